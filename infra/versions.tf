terraform {
  # 1.11: write-only attributes used by terraform-aws-modules/rds v7; 1.10: S3 native state locking.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
  }

  # Partial configuration: bucket and region come from backend.hcl (see backend.hcl.example), written
  # once per account after infra/bootstrap. Each workspace (dev, uat, prod) is stored under
  # env:/<workspace>/platform/terraform.tfstate, locked with a .tflock object beside it (no DynamoDB).
  backend "s3" {
    key          = "platform/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
