################################################################################
# Environment and state
################################################################################

variable "environment" {
  description = "Environment name; must equal the Terraform workspace and the platform stack's environment"
  type        = string

  validation {
    condition     = contains(["dev", "uat", "prod"], var.environment)
    error_message = "environment must be one of dev, uat, prod."
  }
}

variable "state_bucket" {
  description = "Terraform state bucket holding the platform stack's state (from backend.hcl; infra/run.sh passes it as TF_VAR_state_bucket)"
  type        = string
}

variable "state_region" {
  description = "Region of the state bucket (from backend.hcl; infra/run.sh passes it as TF_VAR_state_region)"
  type        = string
}

################################################################################
# GitOps
################################################################################

variable "argocd_target_revision" {
  description = "Git revision (branch or tag) Argo CD syncs k8s/argocd from"
  type        = string
  default     = "main"
}

variable "argocd_apps_path" {
  description = "Folder of the repository holding the Argo CD AppProject and Applications (app of apps)"
  type        = string
  default     = "k8s/argocd"
}

################################################################################
# Sizes
################################################################################

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples (e.g. 15d)"
  type        = string
}

variable "prometheus_storage_gib" {
  description = "Persistent volume size of each Prometheus replica"
  type        = number
}

variable "prometheus_replicas" {
  description = "Prometheus replicas (2 for high availability; each scrapes everything)"
  type        = number
}

variable "alertmanager_replicas" {
  description = "Alertmanager replicas (they gossip to deduplicate notifications)"
  type        = number
}

variable "controller_replicas" {
  description = "Replicas of the stateless controllers (ALB controller, External Secrets, Argo CD server and repo server, OTel Collector)"
  type        = number
}

variable "opensearch_setup_image" {
  description = "Image of the OpenSearch setup Job: a POSIX shell and curl >= 7.86 (SigV4 signing, --fail-with-body)"
  type        = string
  default     = "curlimages/curl:8.17.0"
}
