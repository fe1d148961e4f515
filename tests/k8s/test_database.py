"""The database as the rendered manifests use it: the URL reaches every service container as a mounted
Secret file that follows RDS password rotation (never an environment variable, which is read once), and
the connections every environment may open stay under infra/cluster.yaml database.max_connections."""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath

import pytest

from observability.alerts.aws import RDS_CONNECTIONS_RATIO
from tests.k8s.manifests import (
    ENVIRONMENTS,
    K8S,
    TARGETS,
    Doc,
    cluster,
    config_map_env,
    containers,
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

# The service's own kustomizations (the load generator runs Locust, which never sees the database).
SERVICE_TARGETS = TARGETS[:4]
URL_KEY = "DATABASE_URL"
FILE_VARIABLE = "DATABASE_URL_FILE"


@pytest.mark.parametrize("target", TARGETS)
def test_no_container_takes_the_database_url_from_an_environment_variable(target: str) -> None:
    """An environment variable is fixed when the container starts: after RDS rotates the password the pod
    would keep opening connections with the old one (lesson 11)."""
    for workload in workloads(render(target)):
        for item in containers(workload):
            at = f"{target}: {workload['metadata']['name']}/{item['name']}"
            assert URL_KEY not in {var["name"] for var in item.get("env", [])}, at
            # A whole Secret as environment variables would bring DATABASE_URL (and the file variable too).
            assert not [source for source in item.get("envFrom", []) if "secretRef" in source], at


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_every_service_container_reads_the_database_url_from_a_mounted_secret_file(target: str) -> None:
    docs = render(target)
    built = {
        secret["spec"]["target"].get("name", secret["metadata"]["name"]): secret
        for secret in find(docs, "ExternalSecret")
    }
    checked = set()
    for workload in workloads(docs):
        for item in containers(workload):
            at = f"{target}: {workload['kind']} {workload['metadata']['name']}/{item['name']}"
            variables = {var["name"]: var for var in item.get("env", [])}
            assert FILE_VARIABLE in variables and "value" in variables[FILE_VARIABLE], f"{at}: no {FILE_VARIABLE}"
            path = variables[FILE_VARIABLE]["value"]
            assert PurePosixPath(path).is_absolute(), at
            mount, volume, inside = mounted_file(workload, item["name"], path)
            assert mount.get("readOnly") is True, f"{at}: the Secret is mounted writable"
            # https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod:
            # a container using a Secret as a subPath volume mount does not receive updates.
            assert "subPath" not in mount and "subPathExpr" not in mount, f"{at}: a subPath mount is never refreshed"
            assert "secret" in volume, f"{at}: {path} is not on a Secret volume"
            secret = volume["secret"]
            projected = {entry["path"]: entry["key"] for entry in secret.get("items", [])}
            assert (projected.get(inside) if projected else inside) == URL_KEY, f"{at}: {path} is not {URL_KEY}"
            assert secret.get("optional") is not True, f"{at}: the pod must not start without its database URL"
            mode = secret.get("defaultMode", 0o644)
            assert mode & 0o027 == 0, f"{at}: mode {mode:o} lets others read or the group write the URL"
            source = built.get(secret["secretName"])
            assert source, f"{at}: Secret {secret['secretName']} is not built by an ExternalSecret here"
            assert URL_KEY in source["spec"]["target"]["template"]["data"], at
            checked.add(workload["kind"])
    assert {"Job"} < checked and checked & {"Deployment", "Rollout"}, f"{target}: checked only {checked}"


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_the_service_and_the_migration_read_their_own_copy_of_the_url(target: str) -> None:
    """The Job runs in PreSync, before the service's Secret exists on a first sync: it reads the hook's copy."""
    docs = render(target)
    names = {}
    for workload in [service_workload(docs), one(docs, "Job", "taskboard-migrate")]:
        (item,) = pod_spec(workload)["containers"]
        path = next(var["value"] for var in item["env"] if var["name"] == FILE_VARIABLE)
        names[workload["kind"]] = mounted_file(workload, item["name"], path)[1]["secret"]["secretName"]
    assert names["Job"] == "taskboard-db-migrate"
    assert set(names.values()) == {"taskboard-db", "taskboard-db-migrate"}, names


# -- the connection budget -----------------------------------------------------------------------


def _surge(value: int | str, replicas: int) -> int:
    """A rolling update's maxSurge as a pod count (a percentage rounds up, as the Deployment controller does)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(replicas * int(value.removesuffix("%")) / 100)
    return int(value)


def peak_pods(docs: list[Doc]) -> int:
    """The most service pods that can run at once: the HPA's maximum, plus what a rollout adds at that size."""
    workload = service_workload(docs)
    replicas = one(docs, "HorizontalPodAutoscaler", "taskboard")["spec"]["maxReplicas"]
    strategy = workload["spec"]["strategy"]
    if "canary" in strategy:
        canary = strategy["canary"]
        # With traffic routing the stable ReplicaSet keeps every pod until the canary, scaled to 100 % at
        # the end of the steps, has taken the traffic (then it scales down after scaleDownDelaySeconds):
        # twice the replicas for a moment. dynamicStableScale would shrink stable early; it is not used.
        assert "trafficRouting" in canary and not canary.get("dynamicStableScale"), canary
        return 2 * replicas
    return replicas + _surge(strategy["rollingUpdate"]["maxSurge"], replicas)


def connection_budget(docs: list[Doc]) -> tuple[int, str]:
    """The most connections the service and its migration can hold on the environment's database, and how."""
    workload = service_workload(docs)
    env = config_map_env(docs, workload, "taskboard")
    workers = int(gunicorn_settings(env)["workers"])
    pool = service_settings(docs).db_pool_max
    pods = peak_pods(docs)
    # Per sync worker: its pool (DB_POOL_MAX, kept open between requests) and, while it answers /readyz,
    # the probe's own short connection (app/db.py Database.ping bypasses the pool). The kubelet's and the
    # ALB's probes can reach different workers of a pod at the same moment, so count one per worker.
    per_pod = workers * (pool + 1)
    # The PreSync migration Job: one connection (app/migrations/env.py), one pod at a time.
    migration = 1
    total = pods * per_pod + migration
    return total, f"{pods} pods x {workers} workers x ({pool} pooled + 1 probe) + {migration} migration = {total}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_service_never_holds_enough_connections_to_reach_the_alarm(env: str) -> None:
    """At the HPA's maximum, mid-rollout, the service stays under the connections alarm (RDSConnectionsNearMax
    and the CloudWatch alarm, 80 % of max_connections), so only something other than the service can trip it."""
    docs = overlay(env)
    total, how = connection_budget(docs)
    limit = cluster()["database"]["max_connections"]
    assert total < limit * RDS_CONNECTIONS_RATIO, f"{env}: {how}, not below {RDS_CONNECTIONS_RATIO:.0%} of {limit}"


def test_the_budget_counts_what_it_claims() -> None:
    """The arithmetic on prod's own manifests, each input raised by one: the total moves by what it should."""
    docs = overlay("prod")
    workload = service_workload(docs)
    (source,) = pod_spec(workload)["containers"][0]["envFrom"]
    settings = one(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    workers, pool = int(settings["GUNICORN_WORKERS"]), int(settings["DB_POOL_MAX"])
    pods = peak_pods(docs)
    base, _ = connection_budget(docs)

    one(docs, "HorizontalPodAutoscaler", "taskboard")["spec"]["maxReplicas"] += 1
    assert peak_pods(docs) == pods + 2, "a canary doubles the replicas at its peak"
    more_pods, _ = connection_budget(docs)
    assert more_pods - base == 2 * workers * (pool + 1)

    settings["DB_POOL_MAX"] = str(pool + 1)
    bigger_pool, _ = connection_budget(docs)
    assert bigger_pool - more_pods == (pods + 2) * workers

    settings["GUNICORN_WORKERS"] = str(workers + 1)
    more_workers, _ = connection_budget(docs)
    assert more_workers - bigger_pool == (pods + 2) * (pool + 2)


def test_the_readme_states_the_budgets_as_computed() -> None:
    readme = (K8S / "README.md").read_text()
    stated = re.search(r"That is (\d+), (\d+) and (\d+) connections, .*? at (\d+) %\s+\((\d+)\)", readme, re.S)
    assert stated, 'k8s/README.md: no "That is <dev>, <uat> and <prod> connections ..." sentence'
    budgets = [connection_budget(overlay(env))[0] for env in ENVIRONMENTS]
    assert [int(n) for n in stated.groups()[:3]] == budgets, f"k8s/README.md: the budgets are {budgets}"
    limit = cluster()["database"]["max_connections"]
    assert (int(stated[4]), int(stated[5])) == (round(RDS_CONNECTIONS_RATIO * 100), int(limit * RDS_CONNECTIONS_RATIO))
