################################################################################
# Environment
################################################################################

variable "environment" {
  description = "Environment name; must equal the Terraform workspace (infra/run.sh selects it from -e or ENV)"
  type        = string

  validation {
    condition     = contains(["dev", "uat", "prod"], var.environment)
    error_message = "environment must be one of dev, uat, prod."
  }
}

variable "region" {
  description = "AWS region every resource of this environment is created in"
  type        = string
}

variable "github_branch" {
  description = "Branch whose pushes may plan and push images (the OIDC `ref:refs/heads/<branch>` subject claim)"
  type        = string
  default     = "main"
}

variable "cluster_admin_arns" {
  description = "IAM role or user ARNs given cluster-admin access entries (the people and roles that run infra/run.sh). The creator is not made admin implicitly (EKS module v21)"
  type        = list(string)
}

variable "api_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint and the admin UIs (Grafana, Argo CD); the private endpoint is always on"
  type        = list(string)

  validation {
    condition     = length(var.api_public_access_cidrs) > 0 && alltrue([for cidr in var.api_public_access_cidrs : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "api_public_access_cidrs must list at least one CIDR block, none of them open to the whole internet (/0)."
  }
}

variable "dns_zone_name" {
  description = "Public Route 53 hosted zone (e.g. example.com) the environment's host names are created in by ExternalDNS"
  type        = string
}

variable "dns_subdomain" {
  description = "Label placed between the host names and the zone (e.g. dev gives taskboard.dev.example.com); empty for prod at the zone itself"
  type        = string
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription); other subscribers (PagerDuty, chat) can be added to the topic outside Terraform"
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (VPC flow logs, EKS control plane, RDS, OpenSearch)"
  type        = number
  default     = 365
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "CIDR block of the environment's VPC; distinct per environment so that they can be peered later"
  type        = string
}

variable "az_count" {
  description = "Number of availability zones used (subnets, NAT gateways, nodes, database standby)"
  type        = number

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3 (EKS and the database subnet group need at least two zones)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC (cheaper, one zone's outage cuts egress) instead of one per zone"
  type        = bool
}

################################################################################
# Kubernetes
################################################################################

variable "kubernetes_version" {
  description = "EKS Kubernetes version (minor); keep it within standard support"
  type        = string
  default     = "1.35"
}

variable "node_instance_types" {
  description = "Instance types of the managed node group, in order of preference"
  type        = list(string)
}

variable "node_min_size" {
  description = "Minimum number of nodes"
  type        = number
}

variable "node_max_size" {
  description = "Maximum number of nodes"
  type        = number
}

variable "node_desired_size" {
  description = "Number of nodes at creation (ignored afterwards by the EKS module, so that an autoscaler can own it)"
  type        = number
}

variable "node_disk_size_gib" {
  description = "Root volume size of each node (container images and emptyDir volumes)"
  type        = number
  default     = 50
}

################################################################################
# Database
################################################################################

variable "db_instance_class" {
  description = "RDS instance class"
  type        = string
}

variable "db_allocated_storage_gib" {
  description = "Initial allocated storage of the database"
  type        = number
}

variable "db_max_allocated_storage_gib" {
  description = "Upper bound for RDS storage autoscaling"
  type        = number
}

variable "db_multi_az" {
  description = "Run a synchronous standby in a second zone"
  type        = bool
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (set false and apply before destroying the environment)"
  type        = bool
}

variable "db_final_snapshot" {
  description = "Take a final snapshot when the database is destroyed"
  type        = bool
}

variable "db_backup_retention_days" {
  description = "Days automated backups (and point-in-time recovery) are kept"
  type        = number

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_slow_query_ms" {
  description = "Statements slower than this are logged (log_min_duration_statement) and exported to CloudWatch"
  type        = number
  default     = 500
}

################################################################################
# OpenSearch
################################################################################

variable "opensearch_engine_version" {
  description = "OpenSearch engine version of the log domain"
  type        = string
  default     = "OpenSearch_2.19"
}

variable "opensearch_instance_type" {
  description = "Data node instance type of the log domain"
  type        = string
}

variable "opensearch_instance_count" {
  description = "Number of data nodes; more than one spreads them over zones (zone awareness)"
  type        = number
}

variable "opensearch_volume_size_gib" {
  description = "EBS volume size of each data node"
  type        = number
}

variable "opensearch_dedicated_master_count" {
  description = "Dedicated cluster-manager nodes (0 for none, 3 for production)"
  type        = number

  validation {
    condition     = contains([0, 3, 5], var.opensearch_dedicated_master_count)
    error_message = "opensearch_dedicated_master_count must be 0, 3 or 5."
  }
}

variable "opensearch_dedicated_master_type" {
  description = "Instance type of the dedicated cluster-manager nodes (used when opensearch_dedicated_master_count > 0)"
  type        = string
  default     = "m7g.large.search"
}

################################################################################
# Registry
################################################################################

variable "ecr_keep_images" {
  description = "Number of tagged images kept in the repository; older ones expire"
  type        = number
  default     = 100
}

variable "ecr_force_delete" {
  description = "Delete the repository with its images on destroy (dev only: uat/prod images are the release history)"
  type        = bool
}

################################################################################
# State
################################################################################

variable "state_bucket" {
  description = "Name of the Terraform state bucket (from backend.hcl; infra/run.sh passes it as TF_VAR_state_bucket) — the plan role may write lock files there"
  type        = string
}
