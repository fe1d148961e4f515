"""compose.yaml cannot run here (no Docker engine): it is checked against the Compose Specification's schema,
every file it mounts or builds from must exist, and its ports, names and versions must agree with the
rest of the repository."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import yaml

from app import endpoints
from local import monitoring, stack

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "compose-spec.schema.json"
LOCUST_WEB_PORT = 8089  # Locust's default web UI port (locust --help: --web-port)
SERVICE_IMAGE = "app/Dockerfile"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path → repository path of every bind mount (``./source:/target[:ro]``)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = source.removeprefix("./")
    return mounts


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port → host port."""
    ports = {}
    for entry in service.get("ports", []):
        *host, container = str(entry).split(":")
        ports[int(container)] = int(host[-1])
    return ports


def image_version(service: dict[str, Any]) -> str:
    return str(service["image"]).rpartition(":")[2]


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose()))
    assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_schema_really_refuses_a_misspelt_key() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["app"]["healtcheck"] = broken["services"]["app"].pop("healthcheck")
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_every_mounted_or_built_file_exists() -> None:
    for name, service in services().items():
        for target, source in bind_mounts(service).items():
            assert (ROOT / source).exists(), f"{name}: mounts ./{source} (at {target}), which does not exist"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
    assert any(s.get("build", {}).get("dockerfile") == SERVICE_IMAGE for s in services().values())


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = str(service["image"])
        assert ":" in image.rpartition("/")[2], f"{name}: {image} has no tag"
        assert image_version(service) not in ("latest", ""), f"{name}: {image}"


def test_dependencies_wait_on_conditions_that_can_be_met() -> None:
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must give a condition for each dependency"
        for dependency, rule in depends.items():
            condition = rule["condition"]
            other = all_services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in other, f"{name} waits for {dependency} to be healthy; it has no healthcheck"
            elif condition == "service_completed_successfully":
                assert other.get("restart") == "no", f"{dependency} is a one-shot: restart must be 'no'"
            else:
                assert condition == "service_started", condition
    long_running = [n for n, s in all_services.items() if s.get("restart") != "no"]
    without = [n for n in long_running if "healthcheck" not in all_services[n]]
    assert without == ["fluent-bit"], f"only the distroless Fluent Bit may lack a healthcheck: {without}"


def test_the_service_is_built_from_the_repository_and_follows_app_endpoints() -> None:
    all_services = services()
    app = all_services["app"]
    assert published(app) == {endpoints.HTTP_PORT: endpoints.HTTP_PORT}
    probe = " ".join(app["healthcheck"]["test"])
    assert f"127.0.0.1:{endpoints.HTTP_PORT}{endpoints.READYZ}" in probe
    assert all_services["migrate"]["command"] == ["python", "-m", "app.migrate"]
    assert all_services["seed"]["command"] == ["python", "-m", "app.seed"]
    for name in ("app", "migrate", "seed"):
        service = all_services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"] and service["user"] == "10001:10001"
        url = service["environment"]["DATABASE_URL"]
        match = re.fullmatch(r"postgresql://([^:]+):[^@]+@([^:/]+):5432/(\w+)", url)
        assert match, url
        postgres = all_services["postgres"]["environment"]
        assert (match[1], match[2], match[3]) == (postgres["POSTGRES_USER"], "postgres", postgres["POSTGRES_DB"])
    assert all_services["app"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


def test_ports_agree_with_the_local_stack() -> None:
    all_services = services()
    assert published(all_services["prometheus"]) == {stack.PROMETHEUS_PORT: stack.PROMETHEUS_PORT}
    assert published(all_services["alertmanager"]) == {stack.ALERTMANAGER_PORT: stack.ALERTMANAGER_PORT}
    assert published(all_services["locust"]) == {LOCUST_WEB_PORT: LOCUST_WEB_PORT}
    assert f"--web.listen-address=:{stack.PROMETHEUS_PORT}" in all_services["prometheus"]["command"]


def _prometheus_config() -> dict[str, Any]:
    prometheus = services()["prometheus"]
    mounts = bind_mounts(prometheus)
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    data: dict[str, Any] = yaml.safe_load((ROOT / mounts[config_arg.partition("=")[2]]).read_text())
    return data


def test_prometheus_scrapes_the_service_and_loads_every_rule_file() -> None:
    config = _prometheus_config()
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == endpoints.SERVICE_NAME]
    assert job["metrics_path"] == endpoints.METRICS
    assert job["static_configs"][0]["targets"] == [f"app:{endpoints.HTTP_PORT}"]
    mounts = bind_mounts(services()["prometheus"])
    patterns = [PurePosixPath(p) for p in config["rule_files"]]
    rules_mount = next(t for t, s in mounts.items() if s == "observability/rules")
    rule_files = monitoring.rule_files()
    assert rule_files, "observability/rules/ has no rule files"
    for path in rule_files:
        inside = f"{rules_mount}/{path.name}"
        assert any(fnmatch.fnmatch(inside, str(p)) for p in patterns), f"{path.name} matches no rule_files pattern"
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == [f"alertmanager:{stack.ALERTMANAGER_PORT}"]


def test_alertmanager_and_grafana_use_observabilitys_files() -> None:
    all_services = services()
    assert "observability/alertmanager/alertmanager.yml" in bind_mounts(all_services["alertmanager"]).values()
    grafana = bind_mounts(all_services["grafana"])
    assert grafana["/etc/grafana/provisioning/datasources/datasources.yaml"] == "observability/grafana/datasources.yaml"
    provider = yaml.safe_load((ROOT / grafana["/etc/grafana/provisioning/dashboards/dashboards.yaml"]).read_text())
    (dashboards,) = provider["providers"]
    assert grafana[dashboards["options"]["path"]] == "dashboards/generated"
    assert image_version(all_services["grafana"]).split(".")[0] == "12", "Grafana 13 refuses classic dashboard files"


def test_grafanas_data_sources_resolve_inside_compose() -> None:
    """The cluster's data source URLs are made to resolve by network aliases, on the right ports."""
    all_services = services()
    sources = yaml.safe_load((ROOT / "observability" / "grafana" / "datasources.yaml").read_text())["datasources"]
    ports = {"prometheus": stack.PROMETHEUS_PORT, "jaeger": 16686}
    for source in sources:
        if source["type"] not in ports:
            continue
        match = re.fullmatch(r"http://([^:/]+):(\d+)/?", source["url"])
        assert match, source["url"]
        owners = [
            name
            for name, service in all_services.items()
            if match[1] in service.get("networks", {}).get("default", {}).get("aliases", [])
        ]
        assert owners == [source["type"]], f"{source['url']}: resolves to {owners}"
        assert int(match[2]) == ports[source["type"]]


def test_versions_agree_with_the_rest_of_the_repository() -> None:
    all_services = services()
    locust = re.search(r"^locust==(\S+)$", (ROOT / "tests" / "requirements.txt").read_text(), re.M)
    assert locust and image_version(all_services["locust"]) == locust[1]
    engine = re.search(
        r'variable "opensearch_engine_version".*?default\s*=\s*"OpenSearch_(\d+\.\d+)"',
        (ROOT / "infra" / "variables.tf").read_text(),
        re.S,
    )
    assert engine
    for name in ("opensearch", "opensearch-dashboards", "opensearch-setup"):
        assert image_version(all_services[name]).startswith(f"{engine[1]}."), name
    postgres = re.search(r'family\s*=\s*"postgres(\d+)"', (ROOT / "infra" / "database.tf").read_text())
    assert postgres and image_version(all_services["postgres"]).split(".")[0] == postgres[1]


def test_logs_flow_from_the_service_to_the_indices_observability_defines() -> None:
    all_services = services()
    logging = all_services["app"]["logging"]
    assert logging["driver"] == "fluentd"
    fluent_bit = all_services["fluent-bit"]
    config_path = ROOT / bind_mounts(fluent_bit)[fluent_bit["command"][-1]]
    config = yaml.safe_load(config_path.read_text())
    (forward,) = config["pipeline"]["inputs"]
    port = int(logging["options"]["fluentd-address"].rpartition(":")[2])
    assert forward["name"] == "forward" and forward["port"] == port and published(fluent_bit)[port] == port
    tag = logging["options"]["tag"]
    (output,) = config["pipeline"]["outputs"]
    assert fnmatch.fnmatch(tag, output["match"])
    cluster_values = (ROOT / "observability" / "fluent-bit" / "values.yaml").read_text()
    prefix = re.search(r"^\s+Logstash_Prefix\s+(\S+)$", cluster_values, re.M)
    assert prefix and output["logstash_prefix"] == prefix[1]
    template = json.loads((ROOT / "observability" / "opensearch" / "index-template.json").read_text())
    assert any(fnmatch.fnmatch(f"{prefix[1]}-2026.01.01", p) for p in template["index_patterns"])


def test_opensearch_setup_applies_observabilitys_files() -> None:
    setup = services()["opensearch-setup"]
    mounts = bind_mounts(setup)
    script = (ROOT / mounts["/setup.sh"]).read_text()
    folder = ROOT / mounts["/setup"]
    used = set(re.findall(r"/setup/([\w.-]+)", script))
    assert used == {"index-template.json", "ism-policy.json", "saved-objects.ndjson"}
    for name in used:
        assert (folder / name).is_file(), name


def test_locust_runs_the_repositorys_locustfile_against_the_service() -> None:
    locust = services()["locust"]
    mounts = bind_mounts(locust)
    argument = next(a for a in locust["command"] if a.startswith("--locustfile="))
    assert mounts[argument.partition("=")[2]] == "loadtest/locustfile.py"
    assert f"--host=http://app:{endpoints.HTTP_PORT}" in locust["command"]
    assert f"--web-port={LOCUST_WEB_PORT}" in locust["command"]
