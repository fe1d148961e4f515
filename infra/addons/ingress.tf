################################################################################
# Traffic: AWS Load Balancer Controller (ALBs from Ingresses), ExternalDNS (records in the
# environment's zone), metrics-server (the HPA's resource metrics).
################################################################################

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = "3.5.0"
  namespace  = local.cluster.load_balancer_controller.namespace

  values = [templatefile("${path.module}/values/aws-load-balancer-controller.yaml", {
    cluster_name    = local.platform.cluster_name
    region          = local.platform.region
    vpc_id          = local.platform.vpc_id
    environment     = var.environment
    replicas        = var.controller_replicas
    service_account = local.cluster.load_balancer_controller.service_account
    role_arn        = local.platform.irsa_role_arns.load_balancer_controller
    monitor_labels  = jsonencode(local.monitor_labels)
  })]

  # Its ServiceMonitor needs the CRD. The charts installed after it wait for it (its pod-readiness-gate
  # webhook must answer before they create pods in labelled namespaces).
  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "external_dns" {
  name       = "external-dns"
  repository = "https://kubernetes-sigs.github.io/external-dns"
  chart      = "external-dns"
  version    = "1.21.1"
  namespace  = local.cluster.external_dns.namespace

  values = [templatefile("${path.module}/values/external-dns.yaml", {
    domain          = local.platform.dns_domain
    zone_id         = local.platform.dns_zone_id
    owner_id        = local.platform.cluster_name
    service_account = local.cluster.external_dns.service_account
    role_arn        = local.platform.irsa_role_arns.external_dns
    monitor_labels  = jsonencode(local.monitor_labels)
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  repository = "https://kubernetes-sigs.github.io/metrics-server"
  chart      = "metrics-server"
  version    = "3.13.1"
  namespace  = "kube-system"

  values = [file("${path.module}/values/metrics-server.yaml")]
}
