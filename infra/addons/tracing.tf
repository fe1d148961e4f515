################################################################################
# Traces: Jaeger v2 receives OTLP from the workloads, tail-samples and stores in OpenSearch. Its
# Service and ServiceAccount take the name in cluster.yaml (tracing.service), which the IRSA trust
# policy and the Grafana Jaeger datasource (observability/grafana/datasources.yaml) use.
################################################################################

locals {
  # Passed whole (not through a values file of ours): the chart renders it as Jaeger's config file.
  jaeger_config_values = {
    userconfig = yamldecode(file("${local.observability}/otel/collector.yaml"))
  }
}

resource "helm_release" "jaeger" {
  name       = "jaeger"
  repository = "https://jaegertracing.github.io/helm-charts"
  chart      = "jaeger"
  version    = "4.11.1"
  namespace  = kubernetes_namespace_v1.this[local.cluster.tracing.namespace].metadata[0].name

  values = [
    templatefile("${path.module}/values/jaeger.yaml", {
      service         = local.cluster.tracing.service
      role_arn        = local.platform.irsa_role_arns.jaeger
      opensearch_host = local.platform.opensearch_endpoint
      region          = local.platform.region
    }),
    yamlencode(local.jaeger_config_values),
  ]

  # Jaeger writes its indices as its own role, mapped by the setup Job.
  depends_on = [kubernetes_job_v1.opensearch_setup, helm_release.aws_load_balancer_controller]
}
