"""Policies over the RENDERED output (what Argo CD applies), not over the sources: hardening, resources,
probes, pinned images, default-deny namespaces, selectors and port names that resolve, the shutdown
timing, and agreement with the service's contracts (app/) and the platform's names (infra/)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from app import endpoints
from tests.k8s.manifests import (
    ENVIRONMENTS,
    K8S,
    KUBERNETES_VERSION,
    LONG_RUNNING_KINDS,
    ROOT,
    TARGETS,
    Doc,
    cluster,
    config_map_env,
    container,
    containers,
    env_file,
    find,
    gunicorn_settings,
    mounted_file,
    one,
    overlay,
    pod_spec,
    render,
    service_settings,
    service_workload,
    workloads,
)

# Containers without one of the three probes, and why.
PROBE_EXEMPT = {
    ("locust-worker", "locust"): "a Locust worker serves no port; it exits when it loses its master",
}
PROBE_EXEMPT_KINDS = {"Job": "a Job runs to completion; its pod is never a traffic target"}


def _pod_templates(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    return [(w, w["spec"]["template"]) for w in workloads(docs)]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _label_selector_matches(selector: Doc, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"matchExpressions are not used here: {selector}"
    return _matches(selector.get("matchLabels", {}), labels)


def _namespace(doc: Doc) -> str:
    return str(doc["metadata"].get("namespace", ""))


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, f"not a duration: {duration!r}"
    return sum(int(n or 0) * units[u] for n, u in zip(parts.groups(), "hms", strict=True))


def _annotation_attributes(doc: Doc, annotation: str) -> dict[str, str]:
    text = doc["metadata"]["annotations"][annotation]
    return dict(item.split("=", 1) for item in text.split(","))


# -- hardening -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_runs_restricted(target: str) -> None:
    for workload in workloads(render(target)):
        where = f"{target}: {workload['kind']} {workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod_security = spec.get("securityContext", {})
        assert pod_security.get("runAsNonRoot") is True, where
        assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), where
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), where
        for item in containers(workload):
            security = item.get("securityContext", {})
            at = f"{where} container {item['name']}"
            assert security.get("allowPrivilegeEscalation") is False, at
            assert security.get("readOnlyRootFilesystem") is True, at
            assert security.get("runAsNonRoot") is True, at
            assert security.get("privileged") is not True, at
            assert security.get("capabilities", {}).get("drop") == ["ALL"], at
            assert not security.get("capabilities", {}).get("add"), at
            assert security.get("runAsUser", pod_security.get("runAsUser")) not in (0, None), at


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_requests_and_limits(target: str) -> None:
    for workload in workloads(render(target)):
        for item in containers(workload):
            at = f"{target}: {workload['metadata']['name']}/{item['name']}"
            resources = item.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{at}: {kind} {resources.get(kind)}"


@pytest.mark.parametrize("target", TARGETS)
def test_long_running_containers_have_all_three_probes(target: str) -> None:
    for workload in workloads(render(target)):
        if workload["kind"] in PROBE_EXEMPT_KINDS:
            continue
        assert workload["kind"] in LONG_RUNNING_KINDS
        for item in containers(workload):
            if (workload["metadata"]["name"], item["name"]) in PROBE_EXEMPT:
                continue
            probes = {"readinessProbe", "livenessProbe"} | ({"startupProbe"} if target != "loadgen" else set())
            missing = probes - set(item)
            assert not missing, f"{target}: {workload['metadata']['name']}/{item['name']} lacks {missing}"


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_pinned(target: str) -> None:
    for workload in workloads(render(target)):
        for item in containers(workload):
            image = item["image"]
            name, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (name and "/" not in tag), f"{target}: {image} has no tag"
            assert tag != "latest", f"{target}: {image}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overlay_images_come_from_the_environments_registry(env: str) -> None:
    registry = env_file(K8S / "overlays" / env / "infra-outputs.env")["ECR_REPOSITORY_URL"]
    docs = overlay(env)
    images = {item["image"] for w in workloads(docs) for item in containers(w)}
    assert images and all(image.startswith(f"{registry}:") for image in images), images


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_overlay_pins_its_own_tag(env: str) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / env / "kustomization.yaml").read_text())
    (entry,) = [i for i in kustomization["images"] if i["name"] == "taskboard"]
    tag = str(entry["newTag"])
    assert tag and tag != "latest" and "newName" not in entry, entry
    images = {item["image"] for w in workloads(overlay(env)) for item in containers(w)}
    assert {image.rpartition(":")[2] for image in images} == {tag}


# -- namespaces and network ----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_each_namespace_with_pods_denies_by_default(target: str) -> None:
    docs = render(target)
    namespaces = {_namespace(w) for w in workloads(docs)}
    assert namespaces
    for namespace in namespaces:
        deny = [
            p
            for p in find(docs, "NetworkPolicy")
            if _namespace(p) == namespace
            and p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny, f"{target}: namespace {namespace} has no default-deny NetworkPolicy"
    for ns in find(docs, "Namespace"):
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted", ns["metadata"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_policies_match_the_platform(env: str) -> None:
    docs = overlay(env)
    names = cluster()
    outputs = env_file(K8S / "overlays" / env / "infra-outputs.env")
    tfvars = (ROOT / "infra" / "env" / f"{env}.tfvars").read_text()
    vpc = re.search(r'^vpc_cidr\s*=\s*"([^"]+)"', tfvars, re.M)
    assert vpc, f"infra/env/{env}.tfvars has no vpc_cidr"
    # The placeholder file agrees with the VPC Terraform creates (module.vpc's CIDR is var.vpc_cidr).
    assert outputs["VPC_CIDR"] == vpc[1], f"{env}: infra-outputs.env VPC_CIDR is not vpc_cidr of the tfvars"
    ingress = one(docs, "NetworkPolicy", "taskboard-ingress")["spec"]["ingress"]
    egress = one(docs, "NetworkPolicy", "taskboard-egress")["spec"]["egress"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in [*ingress, *egress]
        for peer in rule.get("from", rule.get("to", []))
        if "ipBlock" in peer
    ]
    assert cidrs and set(cidrs) == {outputs["VPC_CIDR"]}, f"{env}: {cidrs} is not the VPC {outputs['VPC_CIDR']}"

    def namespaces(rules: list[Doc]) -> set[str]:
        return {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in rules
            for peer in rule.get("from", rule.get("to", []))
            if "namespaceSelector" in peer
        }

    assert names["monitoring"]["namespace"] in namespaces(ingress)
    otlp = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)(?:\.svc)?:(\d+)", outputs["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert otlp, outputs["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert otlp[2] == names["tracing"]["namespace"] and otlp[2] in namespaces(egress)
    ports = {port["port"] for rule in egress for port in rule.get("ports", [])}
    assert int(otlp[3]) in ports, f"egress to the collector's port {otlp[3]} is not allowed"
    assert int(outputs["DB_PORT"]) in ports, f"egress to PostgreSQL's port {outputs['DB_PORT']} is not allowed"


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_selects_a_pod_template(target: str) -> None:
    docs = render(target)
    templates = _pod_templates(docs)
    for service in find(docs, "Service"):
        selector = service["spec"]["selector"]
        chosen = [
            t
            for w, t in templates
            if _namespace(w) == _namespace(service) and _matches(selector, t["metadata"]["labels"])
        ]
        assert chosen, f"{target}: Service {service['metadata']['name']} selects no pod template"
        for port in service["spec"]["ports"]:
            target_port = port["targetPort"]
            if isinstance(target_port, str):
                names = {p.get("name") for t in chosen for c in t["spec"]["containers"] for p in c.get("ports", [])}
                assert target_port in names, f"{target}: Service port {target_port} is not a container port"


@pytest.mark.parametrize("target", TARGETS)
def test_every_probe_and_policy_port_name_exists_on_its_container(target: str) -> None:
    docs = render(target)
    for workload in workloads(docs):
        for item in containers(workload):
            names = {p["name"] for p in item.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                action = item.get(probe, {})
                port = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
                if isinstance(port, str):
                    assert port in names, f"{target}: {item['name']} {probe} uses port {port!r}, not one of {names}"
    for policy in find(docs, "NetworkPolicy"):
        # The load generator's policy in the service's namespace selects the service's pods (the base's).
        pods = docs if any(_namespace(w) == _namespace(policy) for w in workloads(docs)) else render("base")
        selected = [
            t
            for w, t in _pod_templates(pods)
            if _namespace(w) == _namespace(policy)
            and _label_selector_matches(policy["spec"]["podSelector"], t["metadata"]["labels"])
        ]
        assert selected or policy["spec"]["podSelector"] == {}, f"{target}: {policy['metadata']['name']} selects no pod"
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                if isinstance(port["port"], str):
                    names = {
                        p.get("name") for t in selected for c in t["spec"]["containers"] for p in c.get("ports", [])
                    }
                    assert port["port"] in names, f"{target}: {policy['metadata']['name']} allows unknown port {port}"


# -- monitoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:4])
def test_monitoring_objects_carry_the_selector_labels_of_infra(target: str) -> None:
    docs = render(target)
    selector = {k: str(v) for k, v in cluster()["monitoring"]["selector_labels"].items()}
    dashboard_label = {k: str(v) for k, v in cluster()["monitoring"]["grafana_dashboard_label"].items()}
    monitors = [d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "Probe")]
    assert len(find(monitors, "ServiceMonitor")) == 1 and find(monitors, "PrometheusRule")
    for doc in monitors:
        assert _matches(selector, doc["metadata"].get("labels", {})), f"{doc['kind']} {doc['metadata']['name']}"
    dashboards = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("dashboard-")]
    assert len(dashboards) == len(list((ROOT / "dashboards" / "generated").glob("*.json")))
    for doc in dashboards:
        assert _matches(dashboard_label, doc["metadata"]["labels"]), doc["metadata"]["name"]


@pytest.mark.parametrize("target", TARGETS[:4])
def test_service_monitor_scrapes_each_pod_once_as_the_services_job(target: str) -> None:
    docs = render(target)
    monitor = one(docs, "ServiceMonitor", "taskboard")
    services = [
        s
        for s in find(docs, "Service")
        if _label_selector_matches(monitor["spec"]["selector"], s["metadata"].get("labels", {}))
    ]
    assert len(services) == 1, f"{target}: the ServiceMonitor selects {len(services)} Services (pods scraped twice?)"
    service = services[0]
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == endpoints.SERVICE_NAME
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == endpoints.METRICS
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    if target.startswith("overlays/"):
        environment = target.split("/")[1]
        relabel = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "environment"]
        assert [r["replacement"] for r in relabel] == [environment]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_series_of_the_service_carries_its_environment(env: str) -> None:
    """The dashboards' environment variable selects on this label (the local stack sets "local"). A target
    relabeling (applied before the scrape, so to every series of the target) with no source labels
    matches every target and sets the label to the environment of infra-outputs.env."""
    from observability import labels

    monitor = one(overlay(env), "ServiceMonitor", "taskboard")
    expected = env_file(K8S / "overlays" / env / "infra-outputs.env")["ENVIRONMENT"]
    assert expected == env
    for endpoint in monitor["spec"]["endpoints"]:
        relabel = [r for r in endpoint.get("relabelings", []) if r.get("targetLabel") == labels.ENVIRONMENT]
        assert len(relabel) == 1, f"{env}: endpoint {endpoint['port']} sets no (or several) {labels.ENVIRONMENT}"
        (rule,) = relabel
        # Prometheus' defaults: action replace, regex (.*) over the (empty) joined source labels: always matches.
        assert rule.get("action", "replace") == "replace"
        assert not rule.get("sourceLabels") and rule.get("regex", "(.*)") == "(.*)", rule
        assert rule["replacement"] == expected
        # A metric relabeling could drop or rewrite it again after the scrape.
        assert not any(r.get("targetLabel") == labels.ENVIRONMENT for r in endpoint.get("metricRelabelings", []))
        # With honorLabels an exposed label of the same name would win over the target's.
        assert not endpoint.get("honorLabels"), f"{env}: honorLabels lets a scraped label override the environment"


# -- the service's own contract ------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:4])
def test_container_port_probes_and_paths_follow_app_endpoints(target: str) -> None:
    item = container(service_workload(render(target)), "taskboard")
    (port,) = item["ports"]
    assert port["containerPort"] == endpoints.HTTP_PORT
    assert item["livenessProbe"]["httpGet"]["path"] == endpoints.HEALTHZ
    assert item["startupProbe"]["httpGet"]["path"] == endpoints.HEALTHZ
    assert item["readinessProbe"]["httpGet"]["path"] == endpoints.READYZ
    ingress = one(render(target), "Ingress", "taskboard")
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] == endpoints.READYZ


@pytest.mark.parametrize("target", TARGETS[:4])
def test_shutdown_timing_adds_up(target: str) -> None:
    """preStop > ALB deregistration delay; grace period ≥ preStop + gunicorn's graceful timeout;
    gunicorn closes every connection after its response, so the ALB never sends on a connection
    gunicorn is closing (lesson 14's sporadic 502s; app/gunicorn.conf.py)."""
    docs = render(target)
    workload = service_workload(docs)
    item = container(workload, "taskboard")
    gunicorn = gunicorn_settings(config_map_env(docs, workload, "taskboard"))
    pre_stop = item["lifecycle"]["preStop"]["sleep"]["seconds"]
    ingress = one(docs, "Ingress", "taskboard")
    deregistration = int(_annotation_attributes(ingress, "alb.ingress.kubernetes.io/target-group-attributes")[
        "deregistration_delay.timeout_seconds"
    ])  # fmt: skip
    assert pre_stop > deregistration, f"preStop {pre_stop}s must outlast the target group's draining {deregistration}s"
    grace = pod_spec(workload)["terminationGracePeriodSeconds"]
    assert grace >= pre_stop + gunicorn["graceful_timeout"], (grace, pre_stop, gunicorn["graceful_timeout"])
    assert gunicorn["keepalive"] == 0, f"gunicorn keeps connections alive for {gunicorn['keepalive']} s"
    assert gunicorn["bind"].endswith(f":{item['ports'][0]['containerPort']}")
    assert workload["spec"]["strategy"].get("rollingUpdate", workload["spec"]["strategy"].get("canary"))[
        "maxUnavailable"
    ] == 0  # fmt: skip


@pytest.mark.parametrize("target", TARGETS[:4])
def test_writable_paths_are_empty_dirs(target: str) -> None:
    """Read-only root: prometheus-client's multiprocess folder and the fault state are under /tmp, an emptyDir."""
    docs = render(target)
    workload = service_workload(docs)
    gunicorn = gunicorn_settings(config_map_env(docs, workload, "taskboard"))
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    for w in [workload, *find(docs, "Job")]:
        for item in containers(w):
            mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
            assert "/tmp" in mounts, f"{w['metadata']['name']}: no /tmp mount"
            assert "emptyDir" in {v["name"]: v for v in pod_spec(w)["volumes"]}[mounts["/tmp"]]
    assert gunicorn["multiproc"].startswith("/tmp/")
    assert "emptyDir" in volumes["tmp"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_service_accepts_the_rendered_settings(env: str) -> None:
    settings = service_settings(overlay(env))
    assert settings.proxy_hops == 1, "behind the ALB the service must trust exactly one proxy"
    assert settings.metrics_enabled
    if env == "dev":
        assert settings.fault_injection_enabled and settings.env == "development"
    else:
        assert settings.env == "production", f"{env} must run with APP_ENV=production"
        assert not settings.fault_injection_enabled, f"fault injection must be off in {env}"


@pytest.mark.parametrize("target", ["base", "overlays/uat", "overlays/prod"])
def test_fault_injection_is_off_outside_dev(target: str) -> None:
    text = "\n".join(
        str(doc) for doc in render(target) if doc["kind"] in ("ConfigMap", "ExternalSecret", "Deployment", "Rollout")
    )
    assert "FAULT_INJECTION_TOKEN" not in text
    settings = service_settings(render(target))
    assert not settings.fault_injection_enabled and settings.env == "production"


def _serves_https_only(ingress: Doc) -> bool:
    annotations = ingress["metadata"]["annotations"]
    listeners = json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"])
    return all(set(listener) == {"HTTPS"} for listener in listeners) and bool(
        annotations.get("alb.ingress.kubernetes.io/certificate-arn")
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_session_cookies_are_secure_wherever_the_service_is_served_over_https(env: str) -> None:
    """A Secure cookie is never sent over plain HTTP. APP_ENV=development (dev) defaults to insecure
    cookies (app/config.py), so an environment behind HTTPS must say so whatever its APP_ENV."""
    docs = overlay(env)
    ingresses = find(docs, "Ingress")
    assert ingresses, f"{env}: no Ingress"
    for ingress in ingresses:
        # Were a plain-HTTP listener ever added, the cookie setting would need deciding again.
        assert _serves_https_only(ingress), f"{env}: Ingress {ingress['metadata']['name']} listens on plain HTTP"
    assert service_settings(docs).session_cookie_secure, f"{env} is served over HTTPS: SESSION_COOKIE_SECURE=true"


def _trace_resource(env: dict[str, str]) -> dict[str, str]:
    """The resource attributes app/tracing.py gives every span in a process started with ``env``."""
    code = (
        "import json, os\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from app import tracing\n"
        "assert tracing.install_provider(InMemorySpanExporter(), os.environ)\n"
        "print(json.dumps(dict(trace.get_tracer_provider().resource.attributes)))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    attributes: dict[str, str] = json.loads(result.stdout)
    return attributes


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_traces_name_the_overlays_environment(env: str) -> None:
    """uat and prod both run APP_ENV=production, app/tracing.py's default for deployment.environment.name:
    OTEL_RESOURCE_ATTRIBUTES, which wins over that default, must name the environment itself."""
    docs = overlay(env)
    workload = service_workload(docs)
    rendered = config_map_env(docs, workload, "taskboard")
    given = dict(item.split("=", 1) for item in rendered["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    expected = env_file(K8S / "overlays" / env / "infra-outputs.env")["ENVIRONMENT"]
    assert given["deployment.environment.name"] == expected == env
    attributes = _trace_resource(rendered)
    assert attributes["deployment.environment.name"] == env, attributes
    assert attributes["service.name"] == endpoints.SERVICE_NAME
    assert attributes["k8s.cluster.name"] == env_file(K8S / "overlays" / env / "infra-outputs.env")["CLUSTER_NAME"]


# -- names shared with infra/ --------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:4])
def test_names_agree_with_infra_cluster_yaml(target: str) -> None:
    docs = render(target)
    names = cluster()
    namespace = names["app"]["namespace"]
    assert {_namespace(d) for d in docs if d["kind"] != "Namespace"} == {namespace}
    assert [d["metadata"]["name"] for d in find(docs, "Namespace")] == [namespace]
    account = names["app"]["service_account"]
    one(docs, "ServiceAccount", account)
    assert pod_spec(service_workload(docs))["serviceAccountName"] == account
    if target.startswith("overlays/"):
        stores = {
            d["spec"]["secretStoreRef"]["name"] for d in find(docs, "ExternalSecret") if "secretStoreRef" in d["spec"]
        }
        assert stores == {names["external_secrets"]["cluster_secret_store"]}
        group = one(docs, "Ingress")["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"]
        assert group == names["load_balancer_controller"]["ingress_group"]


def test_the_namespace_lets_the_alb_gate_pod_readiness() -> None:
    (namespace,) = find(render("base"), "Namespace")
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    annotations = one(render("base"), "Ingress")["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTPS": 443}]


# -- scaling, disruption, secrets ----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:4])
def test_hpa_scales_the_workload_and_the_pdb_covers_its_pods(target: str) -> None:
    docs = render(target)
    workload = service_workload(docs)
    hpa = one(docs, "HorizontalPodAutoscaler", "taskboard")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        workload["apiVersion"],
        workload["kind"],
        workload["metadata"]["name"],
    )
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in workload["spec"], "the HPA owns the replica count"
    assert set(hpa["spec"]["behavior"]) == {"scaleUp", "scaleDown"}
    pdb = one(docs, "PodDisruptionBudget", "taskboard")
    assert _label_selector_matches(pdb["spec"]["selector"], workload["spec"]["template"]["metadata"]["labels"])


def test_production_keeps_at_least_two_pods_in_more_than_one_zone() -> None:
    for env in ("uat", "prod"):
        docs = overlay(env)
        assert one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
        keys = {c["topologyKey"] for c in pod_spec(service_workload(docs))["topologySpreadConstraints"]}
        assert "topology.kubernetes.io/zone" in keys


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_database_secret_follows_password_rotation(env: str) -> None:
    """Lesson 11: the RDS-managed secret is re-read often (External Secrets' refresh interval)."""
    for name in ("taskboard-db", "taskboard-db-migrate"):
        secret = one(overlay(env), "ExternalSecret", name)
        assert _seconds(secret["spec"]["refreshInterval"]) <= 300
        assert secret["spec"]["target"]["template"]["data"]["DATABASE_URL"].endswith("?sslmode=require")


# -- migrations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS[:4])
def test_migrations_run_as_a_presync_hook_before_the_service(target: str) -> None:
    docs = render(target)
    workload = service_workload(docs)
    assert not pod_spec(workload).get("initContainers"), "no migrations in init containers (lesson 10)"
    job = one(docs, "Job", "taskboard-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    wave = int(annotations["argocd.argoproj.io/sync-wave"])
    assert wave < 0
    (item,) = pod_spec(job)["containers"]
    assert item["command"] == ["python", "-m", "app.migrate"]
    assert item["image"] == container(workload, "taskboard")["image"]
    database_url_file = next(v["value"] for v in item["env"] if v["name"] == "DATABASE_URL_FILE")
    _, volume, _ = mounted_file(job, item["name"], database_url_file)
    secret = one(docs, "ExternalSecret", volume["secret"]["secretName"])
    assert secret["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert int(secret["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < wave
    assert "serviceAccountName" not in pod_spec(job), "the service's account does not exist yet in PreSync"


# -- the canary ----------------------------------------------------------------------------------


def test_prod_is_a_canary_split_by_the_alb_and_judged_by_the_slo_analysis() -> None:
    docs = overlay("prod")
    rollout = one(docs, "Rollout", "taskboard")
    assert not find(docs, "Deployment"), "prod runs the Rollout instead of the Deployment"
    canary = rollout["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == [10, 25, 50]
    for index, step in enumerate(steps):
        if "setWeight" in step:
            assert "pause" in steps[index + 1], f"no pause after {step}"
    alb = canary["trafficRouting"]["alb"]
    ingress = one(docs, "Ingress", alb["ingress"])
    (rule,) = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    assert len(paths) == len(one(render("base"), "Ingress", alb["ingress"])["spec"]["rules"][0]["http"]["paths"])
    for path in paths:  # every routed path is split, or part of the traffic would skip the canary
        assert path["backend"]["service"] == {"name": alb["rootService"], "port": {"name": "use-annotation"}}
    root = one(docs, "Service", alb["rootService"])
    assert alb["servicePort"] in {p["port"] for p in root["spec"]["ports"]}
    labels = rollout["spec"]["template"]["metadata"]["labels"]
    for name in (canary["stableService"], canary["canaryService"]):
        service = one(docs, "Service", name)
        assert _matches(service["spec"]["selector"], labels)
        assert alb["servicePort"] in {p["port"] for p in service["spec"]["ports"]}
    analysis = canary["analysis"]
    (template_ref,) = analysis["templates"]
    template = one(docs, "AnalysisTemplate", template_ref["templateName"])
    assert {a["name"] for a in analysis["args"]} == {a["name"] for a in template["spec"]["args"]}
    assert analysis["startingStep"] == 1


def test_only_prod_routes_through_argo_rollouts_actions() -> None:
    for target in ("base", "overlays/dev", "overlays/uat"):
        for path in one(render(target), "Ingress")["spec"]["rules"][0]["http"]["paths"]:
            assert path["backend"]["service"]["port"] == {"name": "http"}, target


# -- Argo CD -------------------------------------------------------------------------------------


def _argocd() -> tuple[Doc, dict[str, Doc]]:
    from tests.k8s.manifests import argocd

    docs = argocd()
    project = one(docs, "AppProject")
    return project, {d["metadata"]["name"]: d for d in find(docs, "Application")}


def _repository_url() -> str:
    """The repository of infra/cluster.yaml, the one place it is written."""
    owner_name = cluster()["repository"]["owner_name"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+", owner_name), owner_name
    return f"https://github.com/{owner_name}"


def test_argocd_has_one_application_per_environment_syncing_its_overlay() -> None:
    repository_url = _repository_url()
    project, apps = _argocd()
    assert set(apps) == {f"taskboard-{env}" for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        app = apps[f"taskboard-{env}"]["spec"]
        assert app["project"] == project["metadata"]["name"]
        assert app["source"]["path"] == f"k8s/overlays/{env}"
        assert app["source"]["repoURL"] == f"{repository_url}.git"
        assert app["source"]["targetRevision"] not in ("master", "HEAD", "")
        assert app["destination"]["namespace"] == cluster()["app"]["namespace"]
        assert "ServerSideApply=true" in app["syncPolicy"]["syncOptions"]
        automated = app["syncPolicy"].get("automated")
        if env == "prod":
            assert automated is None, "prod syncs by hand"
        else:
            assert automated == {"prune": True, "selfHeal": True}, env
    assert project["spec"]["sourceRepos"] == [f"{repository_url}.git"]
    wave = int(project["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    assert all(
        wave < int(a["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")) for a in apps.values()
    )


def test_every_copy_of_the_repository_url_is_the_one_of_infra_cluster_yaml() -> None:
    """Argo CD's manifests and the image's source label cannot read infra/cluster.yaml: they must agree with it
    (observability/links.py and Terraform read it)."""
    from observability.links import repository_url

    repository = _repository_url()
    assert repository == repository_url()
    project, apps = _argocd()
    assert project["spec"]["sourceRepos"] == [f"{repository}.git"]
    assert {app["spec"]["source"]["repoURL"] for app in apps.values()} == {f"{repository}.git"}
    dockerfile = (ROOT / "app" / "Dockerfile").read_text()
    defaults = re.findall(r"^ARG SOURCE=(\S+)$", dockerfile, re.M)
    assert defaults == [repository], f"app/Dockerfile ARG SOURCE defaults to {defaults}, not {repository}"
    assert 'org.opencontainers.image.source="${SOURCE}"' in dockerfile


def test_the_project_allows_exactly_the_kinds_the_overlays_render() -> None:
    project, _ = _argocd()
    spec = project["spec"]
    allowed = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    cluster_allowed = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    rendered: set[tuple[str, str]] = set()
    cluster_rendered: set[tuple[str, str]] = set()
    for env in ENVIRONMENTS:
        for doc in overlay(env):
            group = doc["apiVersion"].rpartition("/")[0]
            (cluster_rendered if doc["kind"] == "Namespace" else rendered).add((group, doc["kind"]))
    assert allowed == rendered
    assert cluster_allowed == cluster_rendered
    assert [d["namespace"] for d in spec["destinations"]] == [cluster()["app"]["namespace"]]


def test_each_clusters_root_app_takes_only_its_own_application() -> None:
    values = (ROOT / "infra" / "addons" / "values" / "argocd-apps.yaml").read_text()
    assert re.search(r"include:.*taskboard-\$\{environment\}\.yaml", values), "no per-environment include"


# -- the load generator --------------------------------------------------------------------------


def test_locust_runs_the_pinned_version_against_the_service_inside_the_cluster() -> None:
    docs = render("loadgen")
    pin = re.search(r"^locust==(\S+)$", (ROOT / "tests" / "requirements.txt").read_text(), re.M)
    assert pin
    app_namespace = cluster()["app"]["namespace"]
    for workload in workloads(docs):
        item = container(workload, "locust")
        assert item["image"] == f"locustio/locust:{pin[1]}"
        assert int(item["resources"]["limits"]["memory"].removesuffix("Mi")) <= 1024, "bounded memory (lesson 9)"
        mount = next(m for m in item["volumeMounts"] if m["name"] == "locustfile")
        assert f"--locustfile={mount['mountPath']}/locustfile.py" in item["args"]
    master = container(one(docs, "Deployment", "locust-master"), "locust")
    service = one(overlay("uat"), "Service", endpoints.SERVICE_NAME)
    assert f"--host=http://{endpoints.SERVICE_NAME}.{app_namespace}.svc" in master["args"]
    assert service["spec"]["ports"][0]["port"] == 80
    assert not find(docs, "Ingress"), "the Locust UI is reached by port-forward only"
    allow = one(docs, "NetworkPolicy", "allow-from-loadgen")
    assert _namespace(allow) == app_namespace
    egress = one(docs, "NetworkPolicy", "locust-egress")["spec"]["egress"]
    assert endpoints.HTTP_PORT in {p["port"] for rule in egress for p in rule.get("ports", [])}


def test_no_object_is_left_with_a_base_placeholder() -> None:
    for env in ENVIRONMENTS:
        text = json.dumps(overlay(env))
        assert "base-placeholder" not in text, f"{env}: a base placeholder was not replaced"
        assert "192.0.2.0/24" not in text, f"{env}: the base's documentation CIDR survived"


def test_the_documented_busybox_loop_would_be_admitted_and_reach_the_service() -> None:
    """k8s/README.md's busybox pod: valid, restricted (the namespace enforces it), let through by the
    load generator's network policies, aimed at the service's API."""
    readme = (K8S / "README.md").read_text()
    block = re.search(
        r"kubectl -n (\S+) run (\S+) .*?--labels=(\S+) --overrides=\"\$\(cat <<'EOF'\n(.*?)\nEOF", readme, re.S
    )
    assert block, "k8s/README.md has no busybox loop"
    namespace, name, labels, overrides = block.groups()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        **json.loads(overrides),
    }
    pod["metadata"]["labels"] = dict(item.split("=") for item in labels.split(","))
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    as_workload = {"kind": "Pod", "metadata": pod["metadata"], "spec": {"template": {"spec": pod["spec"]}}}
    spec = pod_spec(as_workload)
    assert (
        spec["securityContext"]["runAsNonRoot"]
        and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    (item,) = containers(as_workload)
    assert item["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert item["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(item["resources"]["limits"])
    docs = render("loadgen")
    assert namespace == one(docs, "Namespace")["metadata"]["name"]
    egress = one(docs, "NetworkPolicy", "locust-egress")
    assert _label_selector_matches(egress["spec"]["podSelector"], pod["metadata"]["labels"])
    service = f"http://{endpoints.SERVICE_NAME}.{cluster()['app']['namespace']}.svc{endpoints.API_PREFIX}/"
    assert service in " ".join(item["command"])
