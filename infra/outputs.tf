################################################################################
# Read by the add-ons stage (terraform_remote_state) and by infra/run.sh outputs.
################################################################################

output "environment" {
  description = "Environment name (equals the workspace)"
  value       = var.environment
}

output "region" {
  description = "AWS region of the environment"
  value       = var.region
}

output "account_id" {
  description = "AWS account the environment runs in"
  value       = local.account_id
}

output "github_repository" {
  description = "GitHub repository (owner/name) Argo CD syncs from and whose workflows assume the CI roles"
  value       = local.github_repository
}

output "vpc_id" {
  description = "VPC of the environment"
  value       = module.vpc.vpc_id
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name)"
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "EKS API endpoint"
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the EKS API"
  value       = module.eks.cluster_certificate_authority_data
}

output "ecr_repository_url" {
  description = "ECR repository the service image is pushed to and pulled from"
  value       = module.ecr.repository_url
}

output "db_host" {
  description = "PostgreSQL host name (the RDS endpoint without the port)"
  value       = module.db.db_instance_address
}

output "db_port" {
  description = "PostgreSQL port"
  value       = module.db.db_instance_port
}

output "db_name" {
  description = "Database the service uses"
  value       = "taskboard"
}

output "db_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret holding the master username and password (JSON keys username, password)"
  value       = module.db.db_instance_master_user_secret_arn
}

output "alertmanager_secret_name" {
  description = "Secrets Manager secret holding the Alertmanager receiver credentials (JSON keys pagerduty-routing-key, slack-webhook-url)"
  value       = aws_secretsmanager_secret.alertmanager_receivers.name
}

output "opensearch_endpoint" {
  description = "HTTPS host of the OpenSearch domain (VPC endpoint, no scheme)"
  value       = aws_opensearch_domain.this.endpoint
}

output "opensearch_dashboards_endpoint" {
  description = "Host and path of OpenSearch Dashboards"
  value       = aws_opensearch_domain.this.dashboard_endpoint
}

output "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms notify"
  value       = aws_sns_topic.alarms.arn
}

output "certificate_arn" {
  description = "Validated wildcard ACM certificate for the environment's host names"
  value       = aws_acm_certificate_validation.this.certificate_arn
}

output "dns_domain" {
  description = "Domain the environment's host names are created under (ExternalDNS domain filter)"
  value       = local.dns_base
}

output "dns_zone_id" {
  description = "Route 53 hosted zone ExternalDNS may write to"
  value       = data.aws_route53_zone.this.zone_id
}

output "hostnames" {
  description = "Public host names of the environment: app, grafana, argocd"
  value = {
    app     = local.app_hostname
    grafana = local.grafana_hostname
    argocd  = local.argocd_hostname
  }
}

output "admin_cidrs" {
  description = "CIDR blocks allowed to the Kubernetes API and the admin UIs"
  value       = var.api_public_access_cidrs
}

output "irsa_role_arns" {
  description = "IRSA role ARN per add-on and for the service's ServiceAccount"
  value = {
    app                      = module.app_irsa.arn
    load_balancer_controller = module.load_balancer_controller_irsa.arn
    external_dns             = module.external_dns_irsa.arn
    external_secrets         = module.external_secrets_irsa.arn
    fluent_bit               = module.fluent_bit_irsa.arn
    opensearch_setup         = module.opensearch_setup_irsa.arn
    grafana                  = module.grafana_irsa.arn
    cloudwatch_exporter      = module.cloudwatch_exporter_irsa.arn
    jaeger                   = module.jaeger_irsa.arn
    alertmanager_secrets     = module.alertmanager_secrets_irsa.arn
  }
}

output "github_role_arns" {
  description = "Roles the GitHub workflows assume for this environment: plan (read-only), apply, push (ECR)"
  value = {
    plan  = module.github_plan.arn
    apply = module.github_apply.arn
    push  = module.github_push.arn
  }
}

# The contract with k8s/: infra/run.sh outputs writes this to k8s/overlays/<env>/infra-outputs.env,
# which the overlay reads with a kustomize configMapGenerator / replacements. Keys are documented in
# infra/README.md; a test keeps the two lists equal.
output "overlay_env" {
  description = "KEY=value lines for k8s/overlays/<env>/infra-outputs.env"
  value = join("", [for key, value in {
    ENVIRONMENT                 = var.environment
    AWS_REGION                  = var.region
    CLUSTER_NAME                = module.eks.cluster_name
    ECR_REPOSITORY_URL          = module.ecr.repository_url
    APP_ROLE_ARN                = module.app_irsa.arn
    APP_HOSTNAME                = local.app_hostname
    CERTIFICATE_ARN             = aws_acm_certificate_validation.this.certificate_arn
    INGRESS_GROUP               = local.cluster.load_balancer_controller.ingress_group
    DB_HOST                     = module.db.db_instance_address
    DB_PORT                     = tostring(module.db.db_instance_port)
    DB_NAME                     = "taskboard"
    DB_SECRET_ARN               = module.db.db_instance_master_user_secret_arn
    CLUSTER_SECRET_STORE        = local.cluster.external_secrets.cluster_secret_store
    OTEL_EXPORTER_OTLP_ENDPOINT = "http://${local.cluster.tracing.service}.${local.cluster.tracing.namespace}:4318"
    VPC_CIDR                    = module.vpc.vpc_cidr_block
  } : "${key}=${value}\n"])
}
