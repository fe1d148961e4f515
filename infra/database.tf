################################################################################
# RDS PostgreSQL 18: isolated subnets, reachable only from the cluster's nodes (pods share the node
# security group under the VPC CNI), TLS enforced, master password owned and rotated by RDS in Secrets
# Manager (read by External Secrets, never by Terraform).
################################################################################

resource "aws_security_group" "db" {
  #checkov:skip=CKV2_AWS_5:Attached to the RDS instance through module.db (vpc_security_group_ids), which checkov does not expand.
  name        = "${local.name}-db"
  description = "PostgreSQL from the EKS nodes and pods only"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_nodes" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from EKS nodes and pods"
  referenced_security_group_id = module.eks.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

module "db" {
  #checkov:skip=CKV_TF_1:Registry modules are pinned by version constraint; the registry protocol has no commit refs.
  source  = "terraform-aws-modules/rds/aws"
  version = "~> 7.2"

  identifier = local.name

  engine               = "postgres"
  engine_version       = "18"
  family               = "postgres18"
  major_engine_version = "18"
  instance_class       = var.db_instance_class

  storage_type          = "gp3"
  allocated_storage     = var.db_allocated_storage_gib
  max_allocated_storage = var.db_max_allocated_storage_gib
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_name  = "taskboard"
  username = "taskboard"
  port     = 5432

  # RDS generates the password, keeps it in Secrets Manager and rotates it; Terraform never sees it.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.this.arn
  # Lets a DBA add IAM-authenticated roles without passwords.
  iam_database_authentication_enabled = true

  multi_az               = var.db_multi_az
  create_db_subnet_group = false
  db_subnet_group_name   = module.vpc.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  deletion_protection              = var.db_deletion_protection
  skip_final_snapshot              = !var.db_final_snapshot
  final_snapshot_identifier_prefix = "${local.name}-final"
  backup_retention_period          = var.db_backup_retention_days
  backup_window                    = "02:00-03:00"
  maintenance_window               = "Sun:03:30-Sun:04:30"
  copy_tags_to_snapshot            = true
  delete_automated_backups         = false
  auto_minor_version_upgrade       = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  create_monitoring_role                = true
  monitoring_role_name                  = "${local.name}-rds-monitoring"

  enabled_cloudwatch_logs_exports        = ["postgresql", "upgrade"]
  create_cloudwatch_log_group            = true
  cloudwatch_log_group_retention_in_days = var.log_retention_days
  cloudwatch_log_group_kms_key_id        = aws_kms_key.logs.arn

  parameters = [
    # Refuse unencrypted connections.
    { name = "rds.force_ssl", value = "1" },
    # Slow-query log: statements over the threshold go to the postgresql log (exported above).
    { name = "log_min_duration_statement", value = tostring(var.db_slow_query_ms) },
    { name = "log_lock_waits", value = "1" },
    { name = "log_temp_files", value = "0" },
    { name = "shared_preload_libraries", value = "pg_stat_statements", apply_method = "pending-reboot" },
    # Fixed (cluster.yaml), not derived from the instance memory: the alerts compare connections to it.
    { name = "max_connections", value = tostring(local.cluster.database.max_connections), apply_method = "pending-reboot" },
  ]
}

################################################################################
# Database alarms → SNS (CloudWatch metrics; Prometheus sees the same series through YACE)
################################################################################

locals {
  db_alarms = {
    cpu = {
      metric      = "CPUUtilization"
      statistic   = "Average"
      operator    = "GreaterThanThreshold"
      threshold   = 80
      description = "CPU above 80 % for 15 minutes"
    }
    free-storage = {
      metric    = "FreeStorageSpace"
      statistic = "Minimum"
      operator  = "LessThanThreshold"
      # 10 % of the initial allocation, in bytes (storage autoscaling grows it before this fires).
      threshold   = var.db_allocated_storage_gib * 1073741824 / 10
      description = "Free storage below 10 % of the allocated size"
    }
    connections = {
      metric      = "DatabaseConnections"
      statistic   = "Maximum"
      operator    = "GreaterThanThreshold"
      threshold   = local.cluster.database.max_connections * 0.8
      description = "Connections above 80 % of max_connections"
    }
    read-latency = {
      metric      = "ReadLatency"
      statistic   = "Average"
      operator    = "GreaterThanThreshold"
      threshold   = 0.02
      description = "Average read latency above 20 ms"
    }
    write-latency = {
      metric      = "WriteLatency"
      statistic   = "Average"
      operator    = "GreaterThanThreshold"
      threshold   = 0.02
      description = "Average write latency above 20 ms"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "db" {
  for_each = local.db_alarms

  alarm_name          = "${local.name}-db-${each.key}"
  alarm_description   = "${module.db.db_instance_identifier}: ${each.value.description}"
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "breaching"
  dimensions          = { DBInstanceIdentifier = module.db.db_instance_identifier }
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
