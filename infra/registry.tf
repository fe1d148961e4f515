################################################################################
# ECR: the service image. Tags are immutable (a tag names one build forever), every push is scanned,
# old images expire.
################################################################################

module "ecr" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/ecr/aws"
  version = "~> 3.2"

  repository_name                 = local.name
  repository_image_tag_mutability = "IMMUTABLE"
  repository_image_scan_on_push   = true
  repository_encryption_type      = "KMS"
  repository_kms_key              = aws_kms_key.this.arn
  repository_force_delete         = var.ecr_force_delete

  # CI pushes; the nodes pull through their node role (AmazonEC2ContainerRegistryReadOnly, set by the EKS module).
  repository_read_write_access_arns = [module.github_push.arn]

  repository_lifecycle_policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged layers of failed or superseded pushes"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest tagged images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
