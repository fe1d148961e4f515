terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.0"
    }
  }

  # Same bucket as the platform stack (backend.hcl), its own key: env:/<workspace>/addons/terraform.tfstate.
  backend "s3" {
    key          = "addons/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
