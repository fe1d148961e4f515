"""Every .tf file parses; variables and outputs are typed and described; versions are pinned; nothing
account-specific or secret is written down; every file the configuration reads exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.infra.terraform import (
    ENVIRONMENTS,
    INFRA,
    ROOT,
    STACKS,
    all_tf_files,
    assignments,
    cluster_names,
    parse,
    stack,
    strings,
    tfvars,
)

STACK_NAMES = sorted(STACKS)


@pytest.mark.parametrize("path", all_tf_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_tf_file_parses(path: Path) -> None:
    parsed = parse(path)
    assert parsed, f"{path} is empty"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_stack_has_the_standard_files(name: str) -> None:
    files = {path.name for path in stack(name).files}
    assert {"versions.tf", "variables.tf", "outputs.tf", "main.tf"} <= files


@pytest.mark.parametrize("name", STACK_NAMES)
def test_variables_are_typed_and_described(name: str) -> None:
    variables = stack(name).variables
    assert variables
    for variable, body in variables.items():
        assert body.get("type"), f"{name}: variable {variable} has no type"
        assert len(str(body.get("description", ""))) >= 10, f"{name}: variable {variable} has no description"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_outputs_are_described(name: str) -> None:
    outputs = stack(name).outputs
    assert outputs
    for output, body in outputs.items():
        assert len(str(body.get("description", ""))) >= 10, f"{name}: output {output} has no description"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_declared_variables_are_used_and_used_variables_declared(name: str) -> None:
    current = stack(name)
    text = "\n".join(path.read_text() for path in current.files)
    used = set(re.findall(r"\bvar\.([a-z0-9_]+)", text))
    assert used == set(current.variables), (
        f"{name}: unused {set(current.variables) - used}, undeclared {used - set(current.variables)}"
    )


@pytest.mark.parametrize("name", STACK_NAMES)
def test_terraform_and_providers_are_pinned(name: str) -> None:
    settings = stack(name).terraform
    assert len(settings) == 1, f"{name}: one terraform block, in versions.tf"
    assert settings[0]["required_version"] == ">= 1.11"
    providers = {}
    for block in settings[0]["required_providers"]:
        providers.update(block)
    assert providers["aws"] == {"source": "hashicorp/aws", "version": "~> 6.28"}
    for provider, body in providers.items():
        assert re.fullmatch(r"~> \d+\.\d+", body["version"]), (
            f"{name}: provider {provider} not pinned to a minor series"
        )
    if name == "addons":
        assert providers["helm"]["version"] == "~> 3.0"
        assert providers["kubernetes"]["version"] == "~> 3.0"


@pytest.mark.parametrize("name", ["platform", "addons"])
def test_state_backend_is_s3_with_native_locking(name: str) -> None:
    backend = stack(name).terraform[0]["backend"][0]["s3"]
    assert backend["use_lockfile"] is True
    assert backend["encrypt"] is True
    assert "dynamodb_table" not in backend
    # Partial configuration: the bucket comes from backend.hcl, never from the repository.
    assert "bucket" not in backend
    assert backend["key"] == f"{name}/terraform.tfstate"


@pytest.mark.parametrize("name", STACK_NAMES)
def test_registry_modules_are_pinned(name: str) -> None:
    for module, body in stack(name).modules.items():
        assert body["source"].startswith("terraform-aws-modules/"), module
        assert re.fullmatch(r"~> \d+\.\d+", body["version"]), f"{module}: version {body['version']!r} is not pinned"


def test_helm_charts_are_pinned_to_exact_versions() -> None:
    releases = stack("addons").resources_of("helm_release")
    assert len(releases) >= 12
    for release, body in releases.items():
        chart = body["chart"]
        if chart.startswith("${path.module}/charts/"):
            chart_dir = INFRA / "addons" / chart.removeprefix("${path.module}/")
            assert re.search(r"^version: \d+\.\d+\.\d+$", (chart_dir / "Chart.yaml").read_text(), re.M), release
            continue
        assert body["repository"].startswith("https://"), release
        assert re.fullmatch(r"\d+\.\d+\.\d+", body["version"]), f"{release}: chart version {body.get('version')!r}"


# Helm provider 3 takes `kubernetes` as an object attribute and `set` as a list, no longer as blocks.
def test_helm_provider_uses_the_v3_object_syntax() -> None:
    text = (INFRA / "addons" / "main.tf").read_text()
    assert re.search(r'provider "helm" \{\n  kubernetes = \{', text)
    assert re.search(r"\n    exec\s+= \{", text)
    for body in stack("addons").resources_of("helm_release").values():
        assert "set" not in body or isinstance(body["set"], str)


_ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
# A documented template such as arn:aws:iam::<account>:role/<RoleName> is not an ARN.
_LITERAL_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:[^\s\"'`<]*(?=[\s\"'`]|$)")
_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
_SECRET_ASSIGNMENT = re.compile(r"(password|secret|token|private_key)\s*=\s*\"[^\"$]+\"", re.I)


def committed_infra_files() -> list[Path]:
    """Every file of infra/ except the per-account ones a user creates (backend.hcl, account.tfvars,
    credentials.txt, state), which git ignores or the user keeps in a fork."""
    skipped = {"backend.hcl", "account.tfvars", "credentials.txt"}
    return [
        path
        for path in sorted(INFRA.rglob("*"))
        if path.is_file()
        and path.name not in skipped
        and ".terraform" not in path.parts
        and not path.name.endswith((".tfstate", ".tfstate.backup"))
    ]


@pytest.mark.parametrize("path", committed_infra_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_no_account_id_arn_key_or_password_is_written_down(path: Path) -> None:
    text = path.read_text()
    assert not _ACCOUNT_ID.search(text), f"{path}: a 12-digit account id"
    assert not _LITERAL_ARN.search(text), f"{path}: a literal ARN (build it from data.aws_partition / outputs)"
    assert not _ACCESS_KEY.search(text), f"{path}: an access key id"
    assert not _SECRET_ASSIGNMENT.search(text), f"{path}: a literal secret"


def test_the_hard_coded_value_checks_catch_what_they_look_for() -> None:
    assert _ACCOUNT_ID.search("principal = 123456789012")
    assert _LITERAL_ARN.search('"arn:aws:iam::aws:policy/AdministratorAccess"')
    assert _LITERAL_ARN.search("arn:aws-us-gov:s3:::bucket")
    assert not _LITERAL_ARN.search("arn:aws:iam::<account>:role/<RoleName>")
    assert _ACCESS_KEY.search("AKIAABCDEFGHIJKLMNOP")
    assert _SECRET_ASSIGNMENT.search('password = "hunter2hunter2"')
    assert not _SECRET_ASSIGNMENT.search('password = "${random_password.this.result}"')


_FILE_CALL = re.compile(r"(?:file|templatefile|fileset|filesha256)\(\"\$\{(path\.module|local\.[a-z_]+)\}/([^\"]+)\"")


def referenced_files() -> list[tuple[str, Path]]:
    found = []
    for name in ("platform", "addons", "bootstrap"):
        current = stack(name)
        roots = {"path.module": current.directory}
        if name == "addons":
            roots["local.observability"] = ROOT / "observability"
            roots["local.opensearch_sources"] = ROOT / "observability" / "opensearch"
        for path in current.files:
            for base, relative in _FILE_CALL.findall(path.read_text()):
                if base in roots:
                    found.append((f"{path.relative_to(INFRA)}: {relative}", roots[base] / relative))
    # Paths held in locals: the Fluent Bit values file.
    for key, value in stack("addons").locals.items():
        if isinstance(value, str) and value.startswith("${local.observability}/"):
            found.append(
                (f"addons local.{key}", ROOT / "observability" / value.removeprefix("${local.observability}/"))
            )
    return found


@pytest.mark.parametrize("reference", referenced_files(), ids=lambda r: r[0])
def test_every_file_the_configuration_reads_exists(reference: tuple[str, Path]) -> None:
    _, path = reference
    if "*" in path.name or "{" in path.name:
        assert path.parent.is_dir(), f"{path.parent} is missing"
        return
    assert path.resolve().exists(), f"{path} is missing"


def test_observability_files_the_addons_read_are_the_agreed_ones() -> None:
    read = {str(path.resolve().relative_to(ROOT)) for _, path in referenced_files()}
    assert {
        "observability/alertmanager/alertmanager.yml",
        "observability/grafana/datasources.yaml",
        "observability/otel/collector.yaml",
        "observability/fluent-bit/values.yaml",
    } <= read


def test_opensearch_setup_has_something_to_apply() -> None:
    sources = ROOT / "observability" / "opensearch"
    files = sorted(p.name for p in sources.glob("*.json")) + sorted(p.name for p in sources.glob("*.ndjson"))
    assert files, f"{sources} holds no index template, ISM policy or saved objects for the setup Job"


_CLUSTER_REFERENCE = re.compile(r"local\.cluster((?:\.[a-z_]+)+)")


def test_every_cluster_yaml_name_the_configuration_uses_exists() -> None:
    names = cluster_names()
    for name in ("platform", "addons"):
        for path in stack(name).files:
            for reference in _CLUSTER_REFERENCE.findall(path.read_text()):
                node = names
                for key in reference.strip(".").split("."):
                    assert isinstance(node, dict) and key in node, f"{path.name}: cluster.yaml has no {reference}"
                    node = node[key]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("name", ["platform", "addons"])
def test_tfvars_name_their_environment_and_set_only_declared_variables(name: str, environment: str) -> None:
    values = tfvars(name, environment)
    assert values["environment"] == environment
    assert set(values) <= set(stack(name).variables)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_tfvars_and_account_settings_cover_every_required_variable(environment: str) -> None:
    account = assignments(INFRA / "account.tfvars.example")
    given = set(tfvars("platform", environment)) | set(account) | {"state_bucket"}
    required = {name for name, body in stack("platform").variables.items() if "default" not in body}
    assert required <= given, f"{environment}: nothing sets {required - given}"
    required_addons = {name for name, body in stack("addons").variables.items() if "default" not in body}
    assert required_addons <= set(tfvars("addons", environment)) | {"state_bucket", "state_region"}


def test_overlay_keys_are_documented_in_the_readme() -> None:
    value = stack("platform").outputs["overlay_env"]["value"]
    keys = set(re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", value))
    assert len(keys) >= 10
    readme = (INFRA / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.M))
    assert keys == documented, f"README lists {documented - keys} too many, {keys - documented} missing"


def test_database_password_is_managed_by_rds_and_never_an_output() -> None:
    # RDS v7: the master password is generated and rotated by RDS in Secrets Manager, never passed in.
    db = stack("platform").modules["db"]
    assert db["manage_master_user_password"] is True
    assert "password" not in db and "password_wo" not in db
    values = [body["value"] for body in stack("platform").outputs.values()]
    assert not any("password" in value for value in strings(values))
