################################################################################
# OpenSearch: the log store. Private subnets only, encrypted at rest / in transit / node to node,
# fine-grained access control with an IAM master role (the setup Job's role). Fluent Bit, Grafana
# and Jaeger reach it with SigV4 through IRSA; the setup Job maps their roles as backend roles.
################################################################################

locals {
  opensearch_zone_count = min(var.opensearch_instance_count, var.az_count)
  opensearch_log_types  = toset(["INDEX_SLOW_LOGS", "SEARCH_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"])
}

resource "aws_security_group" "opensearch" {
  name        = "${local.name}-opensearch"
  description = "OpenSearch HTTPS from the EKS nodes and pods only"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "opensearch_from_nodes" {
  security_group_id            = aws_security_group.opensearch.id
  description                  = "HTTPS from EKS nodes and pods"
  referenced_security_group_id = module.eks.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_cloudwatch_log_group" "opensearch" {
  for_each = local.opensearch_log_types

  name              = "/aws/opensearch/${local.name}/${lower(each.key)}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

data "aws_iam_policy_document" "opensearch_logs" {
  statement {
    actions   = ["logs:PutLogEvents", "logs:CreateLogStream"]
    resources = [for group in aws_cloudwatch_log_group.opensearch : "${group.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "opensearch" {
  policy_name     = "${local.name}-opensearch"
  policy_document = data.aws_iam_policy_document.opensearch_logs.json
}

# The domain policy admits only the roles that talk to it; fine-grained access control then
# decides what each may do inside (backend-role mappings made by the setup Job).
data "aws_iam_policy_document" "opensearch_access" {
  statement {
    actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"]
    resources = ["arn:${local.partition}:es:${var.region}:${local.account_id}:domain/${local.name}/*"]

    principals {
      type        = "AWS"
      identifiers = [module.opensearch_setup_irsa.arn, module.fluent_bit_irsa.arn, module.grafana_irsa.arn, module.jaeger_irsa.arn]
    }
  }
}

resource "aws_opensearch_domain" "this" {
  #checkov:skip=CKV_AWS_318:Dedicated cluster-manager nodes are chosen per environment: 3 in prod (env/prod.tfvars), none in dev/uat to save cost.
  #checkov:skip=CKV2_AWS_59:Dedicated cluster-manager nodes are chosen per environment: 3 in prod (env/prod.tfvars), none in dev/uat to save cost.
  domain_name    = local.name
  engine_version = var.opensearch_engine_version

  cluster_config {
    instance_type            = var.opensearch_instance_type
    instance_count           = var.opensearch_instance_count
    zone_awareness_enabled   = local.opensearch_zone_count > 1
    dedicated_master_enabled = var.opensearch_dedicated_master_count > 0
    dedicated_master_count   = var.opensearch_dedicated_master_count > 0 ? var.opensearch_dedicated_master_count : null
    dedicated_master_type    = var.opensearch_dedicated_master_count > 0 ? var.opensearch_dedicated_master_type : null

    dynamic "zone_awareness_config" {
      for_each = local.opensearch_zone_count > 1 ? [local.opensearch_zone_count] : []

      content {
        availability_zone_count = zone_awareness_config.value
      }
    }
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.opensearch_volume_size_gib
  }

  vpc_options {
    subnet_ids         = slice(module.vpc.private_subnets, 0, local.opensearch_zone_count)
    security_group_ids = [aws_security_group.opensearch.id]
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = aws_kms_key.this.arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }

  advanced_security_options {
    enabled                        = true
    anonymous_auth_enabled         = false
    internal_user_database_enabled = false

    master_user_options {
      master_user_arn = module.opensearch_setup_irsa.arn
    }
  }

  software_update_options {
    auto_software_update_enabled = true
  }

  access_policies = data.aws_iam_policy_document.opensearch_access.json

  log_publishing_options {
    log_type                 = "INDEX_SLOW_LOGS"
    enabled                  = true
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["INDEX_SLOW_LOGS"].arn
  }

  log_publishing_options {
    log_type                 = "SEARCH_SLOW_LOGS"
    enabled                  = true
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["SEARCH_SLOW_LOGS"].arn
  }

  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    enabled                  = true
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["ES_APPLICATION_LOGS"].arn
  }

  # Who did what, through fine-grained access control (needs advanced_security_options enabled).
  log_publishing_options {
    log_type                 = "AUDIT_LOGS"
    enabled                  = true
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["AUDIT_LOGS"].arn
  }

  depends_on = [aws_cloudwatch_log_resource_policy.opensearch]
}
