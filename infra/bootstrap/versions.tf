terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
  }

  # The bootstrap's own state is local (infra/bootstrap/terraform.tfstate, ignored by git): it holds only
  # the bucket and the OIDC provider, both of which can be re-imported if the file is lost.
}
