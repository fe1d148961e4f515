################################################################################
# GitHub Actions: one role per environment and purpose, assumable only by this repository's workflows
# through the account's GitHub OIDC provider (created once by infra/bootstrap). The `sub` claim is
# matched exactly (https://docs.github.com/en/actions/reference/security/oidc#example-subject-claims):
# plan on pull requests and the main branch, apply only from the GitHub Environment named like this
# environment (protection rules and reviewers live there), image push from the main branch.
################################################################################

locals {
  github_subject = {
    pull_request = "repo:${local.github_repository}:pull_request"
    branch       = "repo:${local.github_repository}:ref:refs/heads/${var.github_branch}"
    environment  = "repo:${local.github_repository}:environment:${var.environment}"
  }
  aws_managed_policy = "arn:${local.partition}:iam::aws:policy"
}

module "github_plan" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role"
  version = "~> 6.5"

  name            = "${local.name}-github-plan"
  use_name_prefix = false
  description     = "terraform plan for ${var.environment} from ${local.github_repository} (read-only)"

  enable_github_oidc = true
  oidc_subjects      = [local.github_subject.pull_request, local.github_subject.branch, local.github_subject.environment]

  policies = {
    ReadOnlyAccess = "${local.aws_managed_policy}/ReadOnlyAccess"
  }

  # A plan writes nothing but the state lock (S3 native locking: a .tflock object beside the state),
  # and decrypts state encrypted with the bucket's KMS key through S3 only.
  create_inline_policy = true
  inline_policy_permissions = {
    StateLock = {
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = ["arn:${local.partition}:s3:::${var.state_bucket}/*.tflock"]
    }
    StateDecrypt = {
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]
      condition = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.region}.amazonaws.com"]
      }]
    }
  }
}

module "github_apply" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role"
  version = "~> 6.5"

  name            = "${local.name}-github-apply"
  use_name_prefix = false
  description     = "terraform apply for ${var.environment} from the ${var.environment} GitHub Environment of ${local.github_repository}"

  enable_github_oidc = true
  oidc_subjects      = [local.github_subject.environment]

  # Applying this stack creates IAM roles, KMS keys, VPCs and clusters: no narrower managed policy covers
  # it. The exposure is bounded by the trust policy (one GitHub Environment, with its own reviewers).
  policies = {
    AdministratorAccess = "${local.aws_managed_policy}/AdministratorAccess"
  }
}

module "github_push" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role"
  version = "~> 6.5"

  name            = "${local.name}-github-push"
  use_name_prefix = false
  description     = "Image push to ${local.name} ECR from ${local.github_repository}"

  enable_github_oidc = true
  oidc_subjects      = [local.github_subject.branch, local.github_subject.environment]

  # The repository policy (module.ecr) grants the push itself; the login token is account-wide.
  create_inline_policy = true
  inline_policy_permissions = {
    EcrLogin = {
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
    EcrPush = {
      actions = [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:DescribeImages",
        "ecr:DescribeImageScanFindings", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage",
        "ecr:UploadLayerPart",
      ]
      resources = [module.ecr.repository_arn]
    }
  }
}

################################################################################
# IRSA: one role per add-on ServiceAccount (namespace and name from cluster.yaml), each with only the
# permissions that add-on uses.
################################################################################

locals {
  oidc_provider         = module.eks.oidc_provider_arn
  opensearch_domain_arn = "arn:${local.partition}:es:${var.region}:${local.account_id}:domain/${local.name}"

  service_accounts = {
    app                      = "${local.cluster.app.namespace}:${local.cluster.app.service_account}"
    load_balancer_controller = "${local.cluster.load_balancer_controller.namespace}:${local.cluster.load_balancer_controller.service_account}"
    external_dns             = "${local.cluster.external_dns.namespace}:${local.cluster.external_dns.service_account}"
    external_secrets         = "${local.cluster.external_secrets.namespace}:${local.cluster.external_secrets.service_account}"
    fluent_bit               = "${local.cluster.logging.namespace}:${local.cluster.logging.service_account}"
    opensearch_setup         = "${local.cluster.logging.namespace}:${local.cluster.logging.setup_service_account}"
    grafana                  = "${local.cluster.monitoring.namespace}:${local.cluster.monitoring.grafana_service_account}"
    cloudwatch_exporter      = "${local.cluster.monitoring.namespace}:${local.cluster.monitoring.cloudwatch_exporter_service_account}"
    alertmanager_secrets     = "${local.cluster.monitoring.namespace}:${local.cluster.monitoring.alertmanager_secrets_service_account}"
    jaeger                   = "${local.cluster.tracing.namespace}:${local.cluster.tracing.service}"
  }
}

module "vpc_cni_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name                  = "${local.name}-vpc-cni"
  use_name_prefix       = false
  policy_name           = "${local.name}-vpc-cni"
  attach_vpc_cni_policy = true
  vpc_cni_enable_ipv4   = true

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = ["kube-system:aws-node"] }
  }
}

module "ebs_csi_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name                  = "${local.name}-ebs-csi"
  use_name_prefix       = false
  policy_name           = "${local.name}-ebs-csi"
  attach_ebs_csi_policy = true

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"] }
  }
}

module "load_balancer_controller_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name                                   = "${local.name}-lb-controller"
  use_name_prefix                        = false
  policy_name                            = "${local.name}-lb-controller"
  attach_load_balancer_controller_policy = true

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.load_balancer_controller] }
  }
}

module "external_dns_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name                          = "${local.name}-external-dns"
  use_name_prefix               = false
  policy_name                   = "${local.name}-external-dns"
  attach_external_dns_policy    = true
  external_dns_hosted_zone_arns = [data.aws_route53_zone.this.arn]

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.external_dns] }
  }
}

# Reads the database's RDS-managed secret and nothing else (no ListSecrets, no other secret).
module "external_secrets_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-external-secrets"
  use_name_prefix = false
  policy_name     = "${local.name}-external-secrets"

  permissions = {
    ReadDatabaseSecret = {
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = [module.db.db_instance_master_user_secret_arn]
    }
    DecryptDatabaseSecret = {
      actions   = ["kms:Decrypt"]
      resources = [aws_kms_key.this.arn]
      condition = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.external_secrets] }
  }
}

module "fluent_bit_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-fluent-bit"
  use_name_prefix = false
  policy_name     = "${local.name}-fluent-bit"

  permissions = {
    WriteLogs = {
      actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
      resources = ["${local.opensearch_domain_arn}/*"]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.fluent_bit] }
  }
}

# The OpenSearch fine-grained-access-control master role: assumed only by the post-deploy setup Job that
# applies the index template, ISM policy, saved objects and backend-role mappings.
module "opensearch_setup_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-opensearch-setup"
  use_name_prefix = false
  policy_name     = "${local.name}-opensearch-setup"

  permissions = {
    AdministerDomain = {
      actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"]
      resources = ["${local.opensearch_domain_arn}/*"]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.opensearch_setup] }
  }
}

# Grafana's CloudWatch and OpenSearch datasources sign their requests with this role.
# https://grafana.com/docs/grafana/latest/datasources/aws-cloudwatch/#iam-policies
module "grafana_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-grafana"
  use_name_prefix = false
  policy_name     = "${local.name}-grafana"

  permissions = {
    ReadMetrics = {
      actions = [
        "cloudwatch:DescribeAlarmsForMetric", "cloudwatch:DescribeAlarmHistory", "cloudwatch:DescribeAlarms",
        "cloudwatch:ListMetrics", "cloudwatch:GetMetricData", "cloudwatch:GetInsightRuleReport",
        "logs:DescribeLogGroups", "logs:GetLogGroupFields", "logs:StartQuery", "logs:StopQuery",
        "logs:GetQueryResults", "logs:GetLogEvents", "ec2:DescribeTags", "ec2:DescribeInstances",
        "ec2:DescribeRegions", "tag:GetResources",
      ]
      resources = ["*"]
    }
    ReadLogs = {
      actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
      resources = ["${local.opensearch_domain_arn}/*"]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.grafana] }
  }
}

# yet-another-cloudwatch-exporter: discovers tagged resources and reads their metrics.
# https://github.com/prometheus-community/yet-another-cloudwatch-exporter#authentication
module "cloudwatch_exporter_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-cloudwatch-exporter"
  use_name_prefix = false
  policy_name     = "${local.name}-cloudwatch-exporter"

  permissions = {
    ReadMetrics = {
      actions   = ["tag:GetResources", "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"]
      resources = ["*"]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.cloudwatch_exporter] }
  }
}

# Jaeger v2 stores traces in OpenSearch (observability/otel/collector.yaml: sigv4auth with this role);
# the setup Job maps it to a role limited to the jaeger-* indices.
module "jaeger_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-jaeger"
  use_name_prefix = false
  policy_name     = "${local.name}-jaeger"

  permissions = {
    StoreTraces = {
      actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
      resources = ["${local.opensearch_domain_arn}/*"]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.jaeger] }
  }
}

# Used only by the monitoring namespace's SecretStore (External Secrets assumes it with that
# ServiceAccount's token): the Alertmanager receiver secret and nothing else.
module "alertmanager_secrets_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-alertmanager-secrets"
  use_name_prefix = false
  policy_name     = "${local.name}-alertmanager-secrets"

  permissions = {
    ReadReceiverSecret = {
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = [aws_secretsmanager_secret.alertmanager_receivers.arn]
    }
    DecryptReceiverSecret = {
      actions   = ["kms:Decrypt"]
      resources = [aws_kms_key.this.arn]
      condition = [{
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }]
    }
  }

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.alertmanager_secrets] }
  }
}

# The service's own ServiceAccount. It needs no AWS API today (its database credentials arrive through
# External Secrets), so the role has no policy; it exists so that the ServiceAccount annotation is
# stable and a future permission (e.g. an S3 bucket for attachments) is one statement here.
module "app_irsa" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.5"

  name            = "${local.name}-app"
  use_name_prefix = false

  oidc_providers = {
    this = { provider_arn = local.oidc_provider, namespace_service_accounts = [local.service_accounts.app] }
  }
}
