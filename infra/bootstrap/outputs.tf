output "state_bucket" {
  description = "Name of the Terraform state bucket"
  value       = aws_s3_bucket.state.id
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state objects"
  value       = aws_kms_key.state.arn
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider"
  value       = module.github_oidc_provider.arn
}

output "backend_hcl" {
  description = "Contents of infra/backend.hcl for this bucket (infra/run.sh bootstrap writes it)"
  value       = "bucket = \"${aws_s3_bucket.state.id}\"\nregion = \"${var.region}\"\n"
}
