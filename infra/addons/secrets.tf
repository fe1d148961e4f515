################################################################################
# Secrets: External Secrets, the ClusterSecretStore named in cluster.yaml (the workload's database
# credentials) and Alertmanager's receiver credentials.
################################################################################

resource "helm_release" "external_secrets" {
  name       = "external-secrets"
  repository = "https://charts.external-secrets.io"
  chart      = "external-secrets"
  version    = "2.9.0"
  namespace  = kubernetes_namespace_v1.this[local.cluster.external_secrets.namespace].metadata[0].name

  values = [templatefile("${path.module}/values/external-secrets.yaml", {
    replicas        = var.controller_replicas
    service_account = local.cluster.external_secrets.service_account
    role_arn        = local.platform.irsa_role_arns.external_secrets
    selector_labels = jsonencode(local.monitor_labels)
  })]

  depends_on = [helm_release.kube_prometheus_stack, helm_release.aws_load_balancer_controller]
}

# The identity the monitoring namespace's SecretStore reads the Alertmanager secret with.
resource "kubernetes_service_account_v1" "alertmanager_secrets" {
  metadata {
    name      = local.cluster.monitoring.alertmanager_secrets_service_account
    namespace = local.monitoring_namespace
    annotations = {
      "eks.amazonaws.com/role-arn" = local.platform.irsa_role_arns.alertmanager_secrets
    }
  }

  automount_service_account_token = false
}

locals {
  external_secrets_config_values = {
    region             = local.platform.region
    clusterSecretStore = local.cluster.external_secrets.cluster_secret_store
    alertmanager = {
      namespace      = local.monitoring_namespace
      serviceAccount = kubernetes_service_account_v1.alertmanager_secrets.metadata[0].name
      secret         = local.cluster.monitoring.alertmanager_secret
      remoteSecret   = local.platform.alertmanager_secret_name
    }
  }
}

resource "helm_release" "external_secrets_config" {
  name      = "external-secrets-config"
  chart     = "${path.module}/charts/external-secrets-config"
  namespace = helm_release.external_secrets.namespace

  values = [yamlencode(local.external_secrets_config_values)]
}
