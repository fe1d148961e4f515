provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Fails the plan when the tfvars file and the workspace disagree (run.sh checks it too, before Terraform),
# or when cluster.yaml's repository is not owner/name (the OIDC subjects are built from it).
data "aws_caller_identity" "current" {
  lifecycle {
    precondition {
      condition     = var.environment == terraform.workspace
      error_message = "The workspace (${terraform.workspace}) differs from environment in the tfvars (${var.environment}): use infra/run.sh -e <env>."
    }
    precondition {
      condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$", local.github_repository))
      error_message = "repository.owner_name in infra/cluster.yaml must look like owner/name."
    }
  }
}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  # A closed list of the region's standard zones (a zone AWS adds later never joins silently); Local and
  # Wavelength Zones (names with more after the letter) lack the instance types and services used here.
  filter {
    name   = "zone-name"
    values = formatlist("${var.region}%s", ["a", "b", "c", "d", "e", "f"])
  }
}

locals {
  # Names shared with the Kubernetes manifests (namespaces, service accounts, labels): one file, read by both.
  cluster = yamldecode(file("${path.module}/cluster.yaml"))
  # The GitHub repository (owner/name) whose workflows may assume the CI roles and which Argo CD syncs
  # from: cluster.yaml, so that a fork changes it in one place for Terraform, k8s/ and observability/.
  github_repository = local.cluster.repository.owner_name

  name       = "taskboard-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # Host names live under <subdomain>.<zone> (or the zone itself in prod); the certificate covers them all.
  dns_base         = var.dns_subdomain == "" ? var.dns_zone_name : "${var.dns_subdomain}.${var.dns_zone_name}"
  app_hostname     = "taskboard.${local.dns_base}"
  grafana_hostname = "grafana.${local.dns_base}"
  argocd_hostname  = "argocd.${local.dns_base}"

  tags = {
    Project     = "taskboard"
    Environment = var.environment
    ManagedBy   = "terraform"
    Repository  = local.github_repository
  }
}

################################################################################
# Encryption keys
################################################################################

# One customer-managed key for the data stores (RDS storage, its master-password secret, Performance
# Insights, OpenSearch, ECR, the alarm topic), so that access to the data can be revoked in one place.
resource "aws_kms_key" "this" {
  description             = "${local.name} data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_data.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms_data" {
  #checkov:skip=CKV_AWS_109:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_111:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" means this key).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch alarms publish to the encrypted SNS topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# CloudWatch Logs needs its own grant in the key policy, limited to this account's log groups.
resource "aws_kms_key" "logs" {
  description             = "${local.name} CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_logs.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

data "aws_iam_policy_document" "kms_logs" {
  #checkov:skip=CKV_AWS_109:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_111:A key policy's resource is always the key itself ("*" means this key).
  #checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" means this key).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}

################################################################################
# Alarm topic
################################################################################

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

################################################################################
# Alertmanager receiver credentials (PagerDuty routing key, Slack webhook URL). Terraform creates the
# secret with placeholders and never reads it back: operators put the real values with
# `aws secretsmanager put-secret-value` (infra/README.md); External Secrets syncs them into the
# monitoring namespace, where Alertmanager reads them as files.
################################################################################

resource "aws_secretsmanager_secret" "alertmanager_receivers" {
  #checkov:skip=CKV2_AWS_57:The values are third-party integration keys (PagerDuty, Slack) rotated by their owners, not by a Lambda.
  name                    = "${local.name}/alertmanager-receivers"
  description             = "Alertmanager receiver credentials (JSON keys pagerduty-routing-key, slack-webhook-url)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "alertmanager_receivers" {
  secret_id = aws_secretsmanager_secret.alertmanager_receivers.id
  secret_string = jsonencode({
    "pagerduty-routing-key" = "set-me"
    "slack-webhook-url"     = "https://hooks.slack.com/services/set-me"
  })

  # The real values are set outside Terraform and must survive every apply.
  lifecycle {
    ignore_changes = [secret_string]
  }
}
