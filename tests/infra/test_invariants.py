"""Security and resilience invariants over the parsed configuration and the environment tfvars: where
things run, what is encrypted, what is reachable, and what prod keeps."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.terraform import ENVIRONMENTS, block, blocks, cluster_names, stack, tfvars

platform = stack("platform")
addons = stack("addons")


def test_nodes_run_in_private_subnets_only() -> None:
    eks = platform.modules["eks"]
    assert eks["subnet_ids"] == "${module.vpc.private_subnets}"
    assert eks["control_plane_subnet_ids"] == "${module.vpc.private_subnets}"
    groups = eks["eks_managed_node_groups"]
    assert groups
    for name, group in groups.items():
        assert group["subnet_ids"] == "${module.vpc.private_subnets}", name
        assert group["ami_type"].startswith("AL2023_"), name
        assert group["metadata_options"]["http_tokens"] == "required", name
        assert group["metadata_options"]["http_put_response_hop_limit"] == 1, name


def test_database_lives_in_the_isolated_database_subnets_and_is_not_public() -> None:
    db = platform.modules["db"]
    assert db["db_subnet_group_name"] == "${module.vpc.database_subnet_group_name}"
    assert db["publicly_accessible"] is False
    vpc = platform.modules["vpc"]
    assert vpc["create_database_subnet_route_table"] is True
    # No route from the database subnets to the internet (the module's defaults, asserted unchanged).
    assert "create_database_internet_gateway_route" not in vpc
    assert "create_database_nat_gateway_route" not in vpc


def test_opensearch_lives_in_private_subnets() -> None:
    domain = platform.resources[("aws_opensearch_domain", "this")]
    assert block(domain, "vpc_options")["subnet_ids"].startswith("${slice(module.vpc.private_subnets,")


def test_the_kubernetes_api_is_private_plus_an_allow_list() -> None:
    eks = platform.modules["eks"]
    assert eks["endpoint_private_access"] is True
    assert eks["endpoint_public_access_cidrs"] == "${var.api_public_access_cidrs}"
    validation = block(platform.variables["api_public_access_cidrs"], "validation")
    assert "/0" in validation["condition"]
    assert eks["upgrade_policy"] == {"support_type": "STANDARD"}
    assert platform.variables["kubernetes_version"]["default"] == "1.35"
    assert set(eks["enabled_log_types"]) >= {"api", "audit", "authenticator"}


def test_everything_that_stores_data_is_encrypted() -> None:
    db = platform.modules["db"]
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert db["performance_insights_kms_key_id"] == "${aws_kms_key.this.arn}"
    assert db["master_user_secret_kms_key_id"] == "${aws_kms_key.this.arn}"

    domain = platform.resources[("aws_opensearch_domain", "this")]
    assert block(domain, "encrypt_at_rest")["enabled"] is True
    assert block(domain, "node_to_node_encryption")["enabled"] is True
    assert block(domain, "domain_endpoint_options")["enforce_https"] is True

    eks = platform.modules["eks"]
    assert eks["create_kms_key"] is True
    assert eks["encryption_config"] == {"resources": ["secrets"]}
    for group in eks["eks_managed_node_groups"].values():
        for mapping in group["block_device_mappings"].values():
            assert mapping["ebs"]["encrypted"] is True

    ecr = platform.modules["ecr"]
    assert ecr["repository_encryption_type"] == "KMS"

    for name, group in platform.resources_of("aws_cloudwatch_log_group").items():
        assert group["kms_key_id"] == "${aws_kms_key.logs.arn}", name
    assert platform.modules["vpc"]["flow_log_cloudwatch_log_group_kms_key_id"] == "${aws_kms_key.logs.arn}"
    assert eks["cloudwatch_log_group_kms_key_id"] == "${aws_kms_key.logs.arn}"
    assert db["cloudwatch_log_group_kms_key_id"] == "${aws_kms_key.logs.arn}"

    for name, topic in platform.resources_of("aws_sns_topic").items():
        assert topic["kms_master_key_id"], name
    for name, secret in platform.resources_of("aws_secretsmanager_secret").items():
        assert secret["kms_key_id"] == "${aws_kms_key.this.arn}", name
    for name, key in {**platform.resources_of("aws_kms_key"), **stack("bootstrap").resources_of("aws_kms_key")}.items():
        assert key["enable_key_rotation"] is True, name

    state = stack("bootstrap").resources[("aws_s3_bucket_server_side_encryption_configuration", "state")]
    default = block(block(state, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"

    storage_class = addons.resources[("kubernetes_storage_class_v1", "gp3")]
    assert storage_class["parameters"]["encrypted"] == "true"


def test_state_bucket_is_versioned_private_and_tls_only() -> None:
    bootstrap = stack("bootstrap")
    versioning = bootstrap.resources[("aws_s3_bucket_versioning", "state")]
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"
    access = bootstrap.resources[("aws_s3_bucket_public_access_block", "state")]
    assert all(
        access[key] is True
        for key in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    policy = bootstrap.data[("aws_iam_policy_document", "state")]
    statement = block(policy, "statement")
    assert statement["effect"] == "Deny"
    condition = block(statement, "condition")
    assert (condition["variable"], condition["values"]) == ("aws:SecureTransport", ["false"])
    assert not any(type_ == "aws_dynamodb_table" for type_, _ in bootstrap.resources)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_backups_are_kept_at_least_seven_days(environment: str) -> None:
    assert tfvars("platform", environment)["db_backup_retention_days"] >= 7
    assert platform.modules["db"]["backup_retention_period"] == "${var.db_backup_retention_days}"


def test_retention_is_seven_days_in_dev_and_thirty_in_prod() -> None:
    assert tfvars("platform", "dev")["db_backup_retention_days"] == 7
    assert tfvars("platform", "prod")["db_backup_retention_days"] == 30


@pytest.mark.parametrize("environment", ["uat", "prod"])
def test_uat_and_prod_are_multi_az_protected_and_snapshot_on_destroy(environment: str) -> None:
    values = tfvars("platform", environment)
    assert values["db_multi_az"] is True
    assert values["db_deletion_protection"] is True
    assert values["db_final_snapshot"] is True
    assert values["ecr_force_delete"] is False
    db = platform.modules["db"]
    assert db["multi_az"] == "${var.db_multi_az}"
    assert db["deletion_protection"] == "${var.db_deletion_protection}"
    assert db["skip_final_snapshot"] == "${!var.db_final_snapshot}"


def test_prod_survives_a_zone() -> None:
    prod = tfvars("platform", "prod")
    assert prod["az_count"] == 3
    assert prod["single_nat_gateway"] is False
    assert prod["opensearch_instance_count"] >= 3
    assert prod["opensearch_dedicated_master_count"] == 3
    assert prod["node_min_size"] >= 3
    assert tfvars("platform", "dev")["single_nat_gateway"] is True
    vpc = platform.modules["vpc"]
    assert vpc["one_nat_gateway_per_az"] == "${!var.single_nat_gateway}"


def test_environments_do_not_share_address_space() -> None:
    cidrs = [tfvars("platform", environment)["vpc_cidr"] for environment in ENVIRONMENTS]
    assert len(set(cidrs)) == len(cidrs)


def test_database_enforces_tls_and_logs_slow_queries() -> None:
    db = platform.modules["db"]
    parameters = {parameter["name"]: parameter["value"] for parameter in db["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == "${tostring(var.db_slow_query_ms)}"
    assert db["performance_insights_enabled"] is True
    assert db["monitoring_interval"] > 0
    assert db["engine_version"] == "18"
    assert db["family"] == "postgres18"
    assert "postgresql" in db["enabled_cloudwatch_logs_exports"]


def test_database_alarms_cover_cpu_storage_connections_and_latency() -> None:
    alarms = platform.locals["db_alarms"]
    assert {alarm["metric"] for alarm in alarms.values()} == {
        "CPUUtilization", "FreeStorageSpace", "DatabaseConnections", "ReadLatency", "WriteLatency",
    }  # fmt: skip
    resource = platform.resources[("aws_cloudwatch_metric_alarm", "db")]
    assert resource["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"]
    assert cluster_names()["database"]["max_connections"] > 0


def rules_of(stack_name: str) -> list[tuple[str, dict[str, Any]]]:
    current = stack(stack_name)
    rules = []
    for kind in (
        "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule",
        "aws_security_group_rule",
    ):
        rules += [(f"{kind}.{name}", body) for name, body in current.resources_of(kind).items()]
    for name, group in current.resources_of("aws_security_group").items():
        rules += [
            (f"aws_security_group.{name}.{kind}", rule)
            for kind in ("ingress", "egress")
            for rule in blocks(group, kind)
        ]
    return rules


def is_alb_https(rule: dict[str, Any]) -> bool:
    return (
        rule.get("from_port") == 443
        and rule.get("to_port") == 443
        and "alb" in str(rule.get("description", "")).lower()
    )


@pytest.mark.parametrize("stack_name", ["platform", "addons", "bootstrap"])
def test_every_security_group_rule_is_narrower_than_the_internet(stack_name: str) -> None:
    for name, rule in rules_of(stack_name):
        cidrs = [
            rule.get("cidr_ipv4"),
            rule.get("cidr_ipv6"),
            *rule.get("cidr_blocks", []),
            *rule.get("ipv6_cidr_blocks", []),
        ]
        if any(cidr in ("0.0.0.0/0", "::/0") for cidr in cidrs):
            assert is_alb_https(rule), f"{name} is open to the internet"
        assert rule.get("description"), f"{name} has no description"
    for group in stack(stack_name).resources_of("aws_security_group").values():
        assert "ingress" not in group and "egress" not in group, "rules are separate resources"


def test_data_stores_admit_only_the_cluster_nodes() -> None:
    for name in ("db_from_nodes", "opensearch_from_nodes"):
        rule = platform.resources[("aws_vpc_security_group_ingress_rule", name)]
        assert rule["referenced_security_group_id"] == "${module.eks.node_security_group_id}"
        assert "cidr_ipv4" not in rule


def test_the_admin_load_balancer_is_restricted_to_the_allow_list() -> None:
    annotations = addons.locals["admin_ingress_annotations"]
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == '${join(",", local.platform.admin_cidrs)}'
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'


def test_github_roles_trust_only_this_repository_and_exact_claims() -> None:
    subjects = platform.locals["github_subject"]
    assert set(subjects.values()) == {
        "repo:${local.github_repository}:pull_request",
        "repo:${local.github_repository}:ref:refs/heads/${var.github_branch}",
        "repo:${local.github_repository}:environment:${var.environment}",
    }
    for role in ("github_plan", "github_apply", "github_push"):
        module = platform.modules[role]
        assert module["enable_github_oidc"] is True
        assert "oidc_wildcard_subjects" not in module
        assert module["oidc_subjects"], role
    # Only the GitHub Environment of this environment may apply.
    assert platform.modules["github_apply"]["oidc_subjects"] == ["${local.github_subject.environment}"]
    assert "ReadOnlyAccess" in platform.modules["github_plan"]["policies"]


def test_external_secrets_reads_only_the_database_secret() -> None:
    permissions = platform.modules["external_secrets_irsa"]["permissions"]
    resources = [resource for statement in permissions.values() for resource in statement["resources"]]
    assert resources == ["${module.db.db_instance_master_user_secret_arn}", "${aws_kms_key.this.arn}"]
    assert "attach_external_secrets_policy" not in platform.modules["external_secrets_irsa"]


def test_every_irsa_role_trusts_one_service_account_from_cluster_yaml() -> None:
    accounts = platform.locals["service_accounts"]
    for name, module in platform.modules.items():
        if not name.endswith("_irsa"):
            continue
        (provider,) = module["oidc_providers"].values()
        (subject,) = provider["namespace_service_accounts"]
        if name in ("vpc_cni_irsa", "ebs_csi_irsa"):
            continue  # EKS add-ons' own service accounts in kube-system
        assert re.fullmatch(r"\$\{local\.service_accounts\.[a-z_]+\}", subject), name
        assert subject.split(".")[-1].rstrip("}") in accounts


def test_prometheus_selectors_are_set_on_purpose_to_the_cluster_yaml_labels() -> None:
    values = (addons.directory / "values" / "kube-prometheus-stack.yaml").read_text()
    for selector in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert f"{selector}SelectorNilUsesHelmValues: false" in values
        assert re.search(rf"    {selector}Selector:\n      matchLabels: \$\{{selector_labels\}}\n", values), selector
    monitoring = addons.resources[("helm_release", "kube_prometheus_stack")]["values"]
    assert "selector_labels = jsonencode(local.monitor_labels)" in re.sub(r"\s+", " ", str(monitoring))
    assert addons.locals["monitor_labels"] == "${local.cluster.monitoring.selector_labels}"
    assert cluster_names()["monitoring"]["selector_labels"] == {"prometheus": "platform"}


def test_the_repository_is_read_from_cluster_yaml_and_checked() -> None:
    """One place names the repository (infra/cluster.yaml, which k8s/ and observability/ read too): the CI
    roles' trust and Argo CD's root Application are built from it, never from a second, per-account copy."""
    owner_name = cluster_names()["repository"]["owner_name"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+", owner_name), owner_name
    assert platform.locals["github_repository"] == "${local.cluster.repository.owner_name}"
    assert platform.locals["cluster"] == '${yamldecode(file("${path.module}/cluster.yaml"))}'
    assert "github_repository" not in platform.variables, "a variable would be a second place to name it"
    preconditions = block(platform.data[("aws_caller_identity", "current")], "lifecycle")["precondition"]
    assert any("local.github_repository" in check["condition"] for check in preconditions)
    assert platform.outputs["github_repository"]["value"] == "${local.github_repository}"
    (values,) = addons.resources[("helm_release", "argocd_root_app")]["values"]
    assert 'repo_url = "https://github.com/${local.cluster.repository.owner_name}.git"' in values
    assert addons.locals["cluster"] == '${yamldecode(file("${path.module}/../cluster.yaml"))}'


def test_the_overlays_get_the_vpc_terraform_created() -> None:
    """k8s/ network policies admit the VPC: the overlay value is the VPC module's CIDR, itself var.vpc_cidr."""
    value = platform.outputs["overlay_env"]["value"]
    assert re.search(r"\bVPC_CIDR = module\.vpc\.vpc_cidr_block\b", value), value
    assert platform.modules["vpc"]["cidr"] == "${var.vpc_cidr}"


def test_rds_max_connections_is_the_one_of_cluster_yaml() -> None:
    """tests/k8s budgets the service's connections against cluster.yaml: the parameter group must apply it."""
    parameters = {parameter["name"]: parameter["value"] for parameter in platform.modules["db"]["parameters"]}
    assert parameters["max_connections"] == "${tostring(local.cluster.database.max_connections)}"
