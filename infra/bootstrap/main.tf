################################################################################
# Account-level, created once before any environment: the Terraform state bucket (S3 native locking,
# no DynamoDB table), the GitHub Actions OIDC provider (an account has one per issuer URL) and the
# OpenSearch service-linked role (one per account), none of which can live in a per-environment
# workspace.
################################################################################

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "taskboard"
      ManagedBy = "terraform"
      Stack     = "bootstrap"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  bucket_name = coalesce(var.bucket_name, "taskboard-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}")
}

################################################################################
# State bucket
################################################################################

resource "aws_kms_key" "state" {
  #checkov:skip=CKV2_AWS_64:The default key policy (the account administers the key through IAM) is the intended one.
  description             = "Terraform state of the taskboard environments"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "state" {
  name          = "alias/taskboard-tfstate"
  target_key_id = aws_kms_key.state.key_id
}

# Access logging would need a second bucket; CloudTrail data events are the audit trail for state access.
#trivy:ignore:AWS-0089
resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:Cross-region replication of the state is not needed: versioning keeps its history and the stacks can be re-imported.
  #checkov:skip=CKV_AWS_18:Access logging would need a second bucket; CloudTrail data events are the audit trail for state access if required.
  #checkov:skip=CKV2_AWS_62:No consumer of state-change events exists.
  bucket = local.bucket_name

  # The state is the only record of what exists: never let a destroy of this stack take it with it.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-state-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# TLS only: refuse any request that arrives over plain HTTP.
data "aws_iam_policy_document" "state" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.state.arn,
      "${aws_s3_bucket.state.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  depends_on = [aws_s3_bucket_public_access_block.state]
}

################################################################################
# OpenSearch's service-linked role: a domain in a VPC cannot be created without it, and an account has
# one, so it lives here rather than in an environment.
################################################################################

resource "aws_iam_service_linked_role" "opensearch" {
  aws_service_name = "opensearchservice.amazonaws.com"
  description      = "Lets Amazon OpenSearch Service manage the network interfaces of VPC domains"
}

################################################################################
# GitHub Actions OIDC provider (the per-environment roles in infra/ trust it)
################################################################################

module "github_oidc_provider" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-oidc-provider"
  version = "~> 6.5"

  url = "https://token.actions.githubusercontent.com"
}
