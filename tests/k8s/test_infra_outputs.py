"""The contract with infra/: the keys of each overlay's infra-outputs.env are exactly those Terraform writes
(infra/outputs.tf, output overlay_env), every one of them reaches the rendered manifests, and the
database URL assembled from them is one the service accepts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, unquote, urlsplit

import pytest
import yaml

from app.config import database_url_from
from tests.k8s.manifests import ENVIRONMENTS, K8S, ROOT, cluster, env_file, kustomize, one, overlay

REPLACEMENTS = K8S / "infra-outputs" / "replacements.yaml"
SOURCE = "infra-outputs"


def terraform_keys() -> list[str]:
    """The keys of output "overlay_env" in infra/outputs.tf, in the order Terraform writes them (sorted)."""
    text = (ROOT / "infra" / "outputs.tf").read_text()
    block = re.search(r'output "overlay_env" \{(.*?)\n\}', text, re.S)
    assert block, 'infra/outputs.tf has no output "overlay_env"'
    keys = re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s+=", block[1], re.M)
    assert keys, "no KEY = value pairs in overlay_env"
    return sorted(keys)


def tfvars_value(env: str, name: str) -> str:
    """A string assignment of infra/env/<env>.tfvars."""
    found = re.search(rf'^{name}\s*=\s*"([^"]+)"', (ROOT / "infra" / "env" / f"{env}.tfvars").read_text(), re.M)
    assert found, f"infra/env/{env}.tfvars has no {name}"
    return found[1]


def consumed_keys() -> set[str]:
    replacements = yaml.safe_load(REPLACEMENTS.read_text())["replacements"]
    keys = set()
    for item in replacements:
        source = item["source"]
        if source["name"] == SOURCE:
            assert source["kind"] == "ConfigMap" and source["fieldPath"].startswith("data.")
            keys.add(source["fieldPath"].removeprefix("data."))
    return keys


def test_the_overlays_consume_exactly_the_keys_terraform_writes() -> None:
    assert consumed_keys() == set(terraform_keys())


def test_terraform_is_the_only_source_of_infrastructure_values() -> None:
    """No value of the platform is typed into an overlay: the replacements read infra-outputs alone, and it is
    the only local-config ConfigMap an overlay generates (the VPC CIDR once came from a second one)."""
    replacements = yaml.safe_load(REPLACEMENTS.read_text())["replacements"]
    assert {(item["source"]["kind"], item["source"]["name"]) for item in replacements} == {("ConfigMap", SOURCE)}
    for env in ENVIRONMENTS:
        kustomization = yaml.safe_load((K8S / "overlays" / env / "kustomization.yaml").read_text())
        local_config = [
            generator["name"]
            for generator in kustomization.get("configMapGenerator", [])
            if generator.get("options", {}).get("annotations", {}).get("config.kubernetes.io/local-config") == "true"
        ]
        assert local_config == [SOURCE], f"{env}: local-config ConfigMaps {local_config}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_committed_file_looks_like_what_run_sh_writes(env: str) -> None:
    path = K8S / "overlays" / env / "infra-outputs.env"
    lines = path.read_text().splitlines()
    assert [line.partition("=")[0] for line in lines] == terraform_keys(), "keys, in Terraform's (sorted) order"
    values = env_file(path)
    assert values["ENVIRONMENT"] == env
    # Placeholders until `infra/run.sh -e <env> outputs` overwrites the file: no real account or domain.
    for key, value in values.items():
        accounts = set(re.findall(r"(?:^|:)([0-9]{12})(?=[:.])", value))
        assert accounts <= {"000000000000"}, f"{env}: {key} names a real-looking account {accounts}"
    assert values["APP_HOSTNAME"].endswith("example.com")
    assert any(re.search(r"(?:^|:)000000000000[:.]", value) for value in values.values())
    # The VPC Terraform creates is the tfvars' vpc_cidr (infra/network.tf): the placeholder names it already.
    assert values["VPC_CIDR"] == tfvars_value(env, "vpc_cidr")
    names = cluster()
    # Values infra derives from infra/cluster.yaml: the placeholders already agree with it.
    assert values["CLUSTER_SECRET_STORE"] == names["external_secrets"]["cluster_secret_store"]
    assert values["INGRESS_GROUP"] == names["load_balancer_controller"]["ingress_group"]
    tracing = names["tracing"]
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{tracing['service']}.{tracing['namespace']}:4318"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_key_reaches_the_rendered_manifests(env: str, tmp_path: Path) -> None:
    """Give every key a unique value in a copy of k8s/: each one must show up in the rendered output."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "overlays" / env / "infra-outputs.env"
    sentinels = {key: f"zz{key.lower().replace('_', '')}zz" for key in env_file(path)}
    sentinels["DB_PORT"] = "54329"
    path.write_text("".join(f"{key}={value}\n" for key, value in sentinels.items()))
    text = kustomize(copy / "overlays" / env)
    missing = [key for key, value in sentinels.items() if value not in text]
    assert not missing, f"{env}: these infra outputs reach no manifest: {missing}"
    assert "base-placeholder" not in text


def _execute(template: str, data: dict[str, str]) -> tuple[dict[str, str], str]:
    """Go's text/template, reduced to what the URL template uses: ``{{- $var := "literal" -}}`` bindings,
    ``{{ $var }}`` and ``{{ .key | urlquery }}`` (url.QueryEscape, as Python's quote_plus)."""
    bindings = dict(re.findall(r'\{\{-?\s*\$(\w+)\s*:=\s*"([^"]*)"\s*-?\}\}', template))
    body = re.sub(r'\s*\{\{-?\s*\$\w+\s*:=\s*"[^"]*"\s*-?\}\}\s*', "", template)
    body = re.sub(r"\{\{\s*\.(\w+)\s*\|\s*urlquery\s*\}\}", lambda m: quote_plus(data[m[1]]), body)
    return bindings, re.sub(r"\{\{\s*\$(\w+)\s*\}\}", lambda m: bindings[m[1]], body)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_database_url_is_assembled_into_a_url_the_service_accepts(env: str) -> None:
    values = env_file(K8S / "overlays" / env / "infra-outputs.env")
    password = "p@ss:w/rd?#%+ok"
    for name in ("taskboard-db", "taskboard-db-migrate"):
        secret = one(overlay(env), "ExternalSecret", name)
        template = secret["spec"]["target"]["template"]["data"]["DATABASE_URL"]
        bindings, url = _execute(template, {"username": "taskboard", "password": password})
        assert bindings == {"host": values["DB_HOST"], "port": values["DB_PORT"], "name": values["DB_NAME"]}
        assert "{{" not in url, url
        assert database_url_from({"DATABASE_URL": url}) == url
        parts = urlsplit(url)
        assert (parts.hostname, parts.port, parts.path) == (
            values["DB_HOST"],
            int(values["DB_PORT"]),
            f"/{values['DB_NAME']}",
        )
        assert unquote(parts.password or "") == password and parts.username == "taskboard"
        assert parse_qs(parts.query) == {"sslmode": ["require"]}
        refs = {item["remoteRef"]["key"] for item in secret["spec"]["data"]}
        assert refs == {values["DB_SECRET_ARN"]}
        assert {item["remoteRef"]["property"] for item in secret["spec"]["data"]} == {"username", "password"}


def test_the_committed_overlays_render_with_their_own_values() -> None:
    for env in ENVIRONMENTS:
        values = env_file(K8S / "overlays" / env / "infra-outputs.env")
        docs = overlay(env)
        account = one(docs, "ServiceAccount", cluster()["app"]["service_account"])
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == values["APP_ROLE_ARN"]
        ingress = one(docs, "Ingress")
        assert ingress["spec"]["rules"][0]["host"] == values["APP_HOSTNAME"]
        assert (
            ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/certificate-arn"] == values["CERTIFICATE_ARN"]
        )
