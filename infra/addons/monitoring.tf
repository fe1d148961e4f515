################################################################################
# Metrics: kube-prometheus-stack (Prometheus, Alertmanager, Grafana) with the selectors, routing and
# datasources of this repository, and the CloudWatch exporter for the managed services.
################################################################################

locals {
  monitoring_namespace = kubernetes_namespace_v1.this[local.cluster.monitoring.namespace].metadata[0].name
  dashboard_label      = local.cluster.monitoring.grafana_dashboard_label
  datasource_label     = local.cluster.monitoring.grafana_datasource_label
}

# observability/alertmanager/alertmanager.yml verbatim. Its receivers read their credentials from files
# (the Secret synced by External Secrets, secrets.tf), so the file itself holds no secret.
resource "kubernetes_secret_v1" "alertmanager_config" {
  metadata {
    name      = "alertmanager-taskboard"
    namespace = local.monitoring_namespace
  }

  data = {
    "alertmanager.yaml" = file("${local.observability}/alertmanager/alertmanager.yml")
  }
}

# observability/grafana/datasources.yaml verbatim, picked up by the Grafana datasource sidecar through
# the label of cluster.yaml.
resource "kubernetes_config_map_v1" "grafana_datasources" {
  metadata {
    name      = "grafana-datasources-taskboard"
    namespace = local.monitoring_namespace
    labels    = local.datasource_label
  }

  data = {
    "datasources.yaml" = file("${local.observability}/grafana/datasources.yaml")
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name       = local.cluster.monitoring.release
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = "88.5.3"
  namespace  = local.monitoring_namespace
  # CRDs and a dozen workloads: more than the default 5 minutes on a fresh cluster.
  timeout = 900

  values = [templatefile("${path.module}/values/kube-prometheus-stack.yaml", {
    environment                   = var.environment
    cluster_name                  = local.platform.cluster_name
    region                        = local.platform.region
    selector_labels               = jsonencode(local.monitor_labels)
    prometheus_replicas           = var.prometheus_replicas
    retention                     = var.prometheus_retention
    prometheus_storage            = "${var.prometheus_storage_gib}Gi"
    alertmanager_replicas         = var.alertmanager_replicas
    alertmanager_config_secret    = kubernetes_secret_v1.alertmanager_config.metadata[0].name
    alertmanager_receivers_secret = local.cluster.monitoring.alertmanager_secret
    grafana_service_account       = local.cluster.monitoring.grafana_service_account
    grafana_role_arn              = local.platform.irsa_role_arns.grafana
    grafana_hostname              = local.platform.hostnames.grafana
    opensearch_host               = local.platform.opensearch_endpoint
    dashboard_label               = keys(local.dashboard_label)[0]
    dashboard_label_value         = jsonencode(values(local.dashboard_label)[0])
    datasource_label              = keys(local.datasource_label)[0]
    datasource_label_value        = jsonencode(values(local.datasource_label)[0])
    admin_ingress_annotations     = jsonencode(merge(local.admin_ingress_annotations, { "alb.ingress.kubernetes.io/healthcheck-path" = "/api/health" }))
  })]

  depends_on = [kubernetes_storage_class_v1.gp3, kubernetes_config_map_v1.grafana_datasources]
}

resource "helm_release" "cloudwatch_exporter" {
  name       = "cloudwatch-exporter"
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "prometheus-yet-another-cloudwatch-exporter"
  version    = "0.47.0"
  namespace  = local.monitoring_namespace

  values = [templatefile("${path.module}/values/prometheus-yet-another-cloudwatch-exporter.yaml", {
    environment     = var.environment
    region          = local.platform.region
    service_account = local.cluster.monitoring.cloudwatch_exporter_service_account
    role_arn        = local.platform.irsa_role_arns.cloudwatch_exporter
    selector_labels = jsonencode(local.monitor_labels)
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}
