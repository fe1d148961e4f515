################################################################################
# Logs: Fluent Bit ships the service's container logs to OpenSearch (pipeline in observability/), after a
# post-deploy Job has applied the index template, ISM policy, saved objects and role mappings of
# observability/opensearch/ from inside the VPC.
################################################################################

locals {
  logging_namespace  = kubernetes_namespace_v1.this[local.cluster.logging.namespace].metadata[0].name
  fluent_bit_values  = "${local.observability}/fluent-bit/values.yaml"
  opensearch_sources = "${local.observability}/opensearch"
  opensearch_files   = sort(tolist(fileset(local.opensearch_sources, "*.{json,ndjson}")))

  # Fluent Bit writes daily indices <Logstash_Prefix>-YYYY.MM.DD and Jaeger <index_prefix>-jaeger-*; the
  # roles the Job maps cover exactly those (both read from the observability/ files that set them).
  log_index_pattern = "${one(regex("Logstash_Prefix\\s+(\\S+)", yamldecode(file(local.fluent_bit_values)).config.outputs))}-*"
  trace_index_prefix = try(
    yamldecode(file("${local.observability}/otel/collector.yaml")).extensions.jaeger_storage.backends.opensearch.opensearch.indices.index_prefix,
    "jaeger",
  )
  trace_index_pattern = "${local.trace_index_prefix}-*"

  setup_script = file("${path.module}/opensearch-setup.sh")
  # A change to any input gives the Job a new name, so Terraform replaces it and it runs again.
  setup_revision = substr(sha256(join("", concat(
    [local.setup_script, local.log_index_pattern, local.trace_index_pattern, local.platform.opensearch_endpoint],
    [for name in local.opensearch_files : filesha256("${local.opensearch_sources}/${name}")],
  ))), 0, 10)
}

resource "kubernetes_config_map_v1" "opensearch_setup" {
  metadata {
    name      = "opensearch-setup-${local.setup_revision}"
    namespace = local.logging_namespace
  }

  data = merge(
    { for name in local.opensearch_files : name => file("${local.opensearch_sources}/${name}") },
    { "opensearch-setup.sh" = local.setup_script },
  )
}

resource "kubernetes_service_account_v1" "opensearch_setup" {
  metadata {
    name      = local.cluster.logging.setup_service_account
    namespace = local.logging_namespace
    annotations = {
      "eks.amazonaws.com/role-arn" = local.platform.irsa_role_arns.opensearch_setup
    }
  }

  automount_service_account_token = false
}

resource "kubernetes_job_v1" "opensearch_setup" {
  metadata {
    name      = "opensearch-setup-${local.setup_revision}"
    namespace = local.logging_namespace
  }

  spec {
    # No TTL: a deleted Job would look like drift and be re-created by the next apply.
    backoff_limit           = 4
    active_deadline_seconds = 600

    template {
      metadata {
        labels = { "app.kubernetes.io/name" = "opensearch-setup" }
      }

      spec {
        service_account_name            = kubernetes_service_account_v1.opensearch_setup.metadata[0].name
        automount_service_account_token = false
        restart_policy                  = "Never"

        security_context {
          run_as_non_root = true
          run_as_user     = 100
          run_as_group    = 101
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name    = "setup"
          image   = var.opensearch_setup_image
          command = ["/bin/sh", "/config/opensearch/opensearch-setup.sh"]

          env {
            name  = "OPENSEARCH_ENDPOINT"
            value = local.platform.opensearch_endpoint
          }
          env {
            name  = "AWS_REGION"
            value = local.platform.region
          }
          env {
            name  = "FLUENT_BIT_ROLE_ARN"
            value = local.platform.irsa_role_arns.fluent_bit
          }
          env {
            name  = "GRAFANA_ROLE_ARN"
            value = local.platform.irsa_role_arns.grafana
          }
          env {
            name  = "JAEGER_ROLE_ARN"
            value = local.platform.irsa_role_arns.jaeger
          }
          env {
            name  = "LOG_INDEX_PATTERN"
            value = local.log_index_pattern
          }
          env {
            name  = "TRACE_INDEX_PATTERN"
            value = local.trace_index_pattern
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          resources {
            requests = { cpu = "10m", memory = "32Mi" }
            limits   = { memory = "64Mi" }
          }

          volume_mount {
            name       = "config"
            mount_path = "/config/opensearch"
            read_only  = true
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.opensearch_setup.metadata[0].name
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "16Mi"
          }
        }
      }
    }
  }

  wait_for_completion = true

  timeouts {
    create = "10m"
    update = "10m"
  }
}

resource "helm_release" "fluent_bit" {
  name       = "fluent-bit"
  repository = "https://fluent.github.io/helm-charts"
  chart      = "fluent-bit"
  version    = "0.58.1"
  namespace  = local.logging_namespace

  values = [
    file(local.fluent_bit_values),
    templatefile("${path.module}/values/fluent-bit.yaml", {
      opensearch_host = local.platform.opensearch_endpoint
      region          = local.platform.region
      service_account = local.cluster.logging.service_account
      role_arn        = local.platform.irsa_role_arns.fluent_bit
      selector_labels = jsonencode(local.monitor_labels)
    }),
  ]

  # The index template must exist before the first daily index is created, or that index gets dynamic
  # mappings; the role mapping must exist before Fluent Bit's first write is authorised.
  depends_on = [kubernetes_job_v1.opensearch_setup, helm_release.kube_prometheus_stack]
}
