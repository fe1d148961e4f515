################################################################################
# The add-ons stage. It runs after the platform stack (infra/) and reads it through its remote state,
# so the Helm and Kubernetes providers are configured from a cluster that already exists: no
# "Kubernetes cluster unreachable" on a first apply or after the cluster is replaced.
################################################################################

data "terraform_remote_state" "platform" {
  backend   = "s3"
  workspace = terraform.workspace

  config = {
    bucket = var.state_bucket
    key    = "platform/terraform.tfstate"
    region = var.state_region
  }
}

locals {
  platform = data.terraform_remote_state.platform.outputs
  cluster  = yamldecode(file("${path.module}/../cluster.yaml"))

  # Files owned by observability/ (routing, datasources, pipelines): read where they are, never copied.
  observability = "${path.module}/../../observability"

  # Every ServiceMonitor, PodMonitor and PrometheusRule must carry these labels (cluster.yaml), the
  # add-ons' own included, or Prometheus ignores it.
  monitor_labels = local.cluster.monitoring.selector_labels

  # The admin UIs share one internet-facing ALB restricted to the allow-listed CIDRs; the service has its
  # own IngressGroup (k8s/), open to everyone on 443 only.
  admin_ingress_annotations = {
    "alb.ingress.kubernetes.io/scheme"           = "internet-facing"
    "alb.ingress.kubernetes.io/target-type"      = "ip"
    "alb.ingress.kubernetes.io/group.name"       = "${local.cluster.load_balancer_controller.ingress_group}-admin"
    "alb.ingress.kubernetes.io/listen-ports"     = "[{\"HTTPS\": 443}]"
    "alb.ingress.kubernetes.io/certificate-arn"  = local.platform.certificate_arn
    "alb.ingress.kubernetes.io/ssl-policy"       = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    "alb.ingress.kubernetes.io/inbound-cidrs"    = join(",", local.platform.admin_cidrs)
    "alb.ingress.kubernetes.io/healthcheck-path" = "/healthz"
  }

  tags = {
    Project     = "taskboard"
    Environment = var.environment
    ManagedBy   = "terraform"
  }
}

provider "aws" {
  region = local.platform.region

  default_tags {
    tags = local.tags
  }
}

# Both providers authenticate with a short-lived token from the caller's AWS credentials (exec), never a
# stored kubeconfig. The caller needs an EKS access entry (cluster_admin_arns or the CI apply role).
provider "helm" {
  kubernetes = {
    host                   = local.platform.cluster_endpoint
    cluster_ca_certificate = base64decode(local.platform.cluster_certificate_authority_data)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", local.platform.cluster_name, "--region", local.platform.region]
    }
  }
}

provider "kubernetes" {
  host                   = local.platform.cluster_endpoint
  cluster_ca_certificate = base64decode(local.platform.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", local.platform.cluster_name, "--region", local.platform.region]
  }
}

# Refuses to run against another environment's platform (workspace, tfvars and remote state must agree).
resource "terraform_data" "environment_guard" {
  input = var.environment

  lifecycle {
    precondition {
      condition     = var.environment == terraform.workspace && local.platform.environment == var.environment
      error_message = "Workspace (${terraform.workspace}), tfvars (${var.environment}) and platform state (${local.platform.environment}) must name the same environment: use infra/run.sh -e <env>."
    }
  }
}

################################################################################
# Namespaces (Pod Security Standards labels) and the default StorageClass
################################################################################

locals {
  # Fluent Bit (hostPath log files) and the node exporter (host network and PID) need "privileged"; the
  # others enforce "baseline" (not every upstream chart sets a restricted securityContext) and warn and
  # audit against "restricted", so that drift shows before it is enforced.
  namespaces = {
    (local.cluster.monitoring.namespace)       = "privileged"
    (local.cluster.logging.namespace)          = "privileged"
    (local.cluster.tracing.namespace)          = "baseline"
    (local.cluster.external_secrets.namespace) = "baseline"
    (local.cluster.argocd.namespace)           = "baseline"
    (local.cluster.argo_rollouts.namespace)    = "baseline"
  }
}

resource "kubernetes_namespace_v1" "this" {
  for_each = local.namespaces

  metadata {
    name = each.key
    labels = {
      "pod-security.kubernetes.io/enforce" = each.value
      "pod-security.kubernetes.io/warn"    = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    }
  }
}

# EKS (1.30 and later) ships no default StorageClass: Prometheus and Alertmanager volumes need one.
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"
    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true
  parameters = {
    type      = "gp3"
    encrypted = "true"
  }
}
