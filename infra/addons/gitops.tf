################################################################################
# GitOps: Argo CD bootstraps the workloads from k8s/argocd/ (app of apps); Argo Rollouts runs prod's
# canary. Everything in k8s/ is Argo CD's from here on; Terraform only installs the controllers.
################################################################################

locals {
  argocd_namespace = kubernetes_namespace_v1.this[local.cluster.argocd.namespace].metadata[0].name
}

resource "helm_release" "argo_rollouts" {
  name       = "argo-rollouts"
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argo-rollouts"
  version    = "2.41.0"
  namespace  = kubernetes_namespace_v1.this[local.cluster.argo_rollouts.namespace].metadata[0].name

  values = [templatefile("${path.module}/values/argo-rollouts.yaml", {
    replicas        = var.controller_replicas
    selector_labels = jsonencode(local.monitor_labels)
  })]

  depends_on = [helm_release.kube_prometheus_stack, helm_release.aws_load_balancer_controller]
}

resource "helm_release" "argo_cd" {
  name       = "argo-cd"
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argo-cd"
  version    = "10.1.1"
  namespace  = local.argocd_namespace
  # CRDs and a dozen workloads: more than the default 5 minutes on a fresh cluster.
  timeout = 900

  values = [templatefile("${path.module}/values/argo-cd.yaml", {
    hostname                  = local.platform.hostnames.argocd
    replicas                  = var.controller_replicas
    selector_labels           = jsonencode(local.monitor_labels)
    admin_ingress_annotations = jsonencode(local.admin_ingress_annotations)
  })]

  depends_on = [helm_release.kube_prometheus_stack, helm_release.aws_load_balancer_controller]
}

# Separate release: the Application kind exists only once the argo-cd chart has installed its CRDs.
# Installed last, when every CRD the workloads use (ServiceMonitor, PrometheusRule, ExternalSecret,
# Rollout) and the ClusterSecretStore exist.
resource "helm_release" "argocd_root_app" {
  name       = "argocd-apps"
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argocd-apps"
  version    = "2.0.5"
  namespace  = local.argocd_namespace

  values = [templatefile("${path.module}/values/argocd-apps.yaml", {
    namespace       = local.argocd_namespace
    repo_url        = "https://github.com/${local.cluster.repository.owner_name}.git"
    target_revision = var.argocd_target_revision
    path            = var.argocd_apps_path
    environment     = var.environment
  })]

  depends_on = [
    helm_release.argo_cd,
    helm_release.argo_rollouts,
    helm_release.external_secrets_config,
    helm_release.kube_prometheus_stack,
    helm_release.fluent_bit,
    helm_release.jaeger,
  ]
}
