output "grafana_url" {
  description = "Grafana (admin ALB, allow-listed CIDRs); the admin password is in the Secret kube-prometheus-stack-grafana"
  value       = "https://${local.platform.hostnames.grafana}"
}

output "argocd_url" {
  description = "Argo CD (admin ALB, allow-listed CIDRs); the initial admin password is in the Secret argocd-initial-admin-secret"
  value       = "https://${local.platform.hostnames.argocd}"
}

output "releases" {
  description = "Helm release name => chart version installed in this environment"
  value = {
    for release in [
      helm_release.aws_load_balancer_controller, helm_release.external_dns, helm_release.metrics_server,
      helm_release.kube_prometheus_stack, helm_release.cloudwatch_exporter, helm_release.fluent_bit,
      helm_release.jaeger, helm_release.external_secrets,
      helm_release.argo_cd, helm_release.argo_rollouts, helm_release.argocd_root_app,
    ] : release.name => release.version
  }
}

output "opensearch_setup_job" {
  description = "Name of the Job that applied observability/opensearch/ (kubectl -n logging logs job/<name>)"
  value       = kubernetes_job_v1.opensearch_setup.metadata[0].name
}
