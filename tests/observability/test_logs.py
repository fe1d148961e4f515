"""Logs as code: the Fluent Bit values, and real log lines of the running service pushed through the same
parsing rules Fluent Bit applies, then checked field by field against the OpenSearch index template."""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from observability import cluster, fluentbit
from observability.fluentbit import Section
from tests.observability.live import Live

OPENSEARCH_DIR = Path(fluentbit.__file__).resolve().parent / "opensearch"
TEMPLATE = json.loads((OPENSEARCH_DIR / "index-template.json").read_text())
MAPPING = TEMPLATE["template"]["mappings"]
ISM = json.loads((OPENSEARCH_DIR / "ism-policy.json").read_text())
SAVED = [json.loads(line) for line in (OPENSEARCH_DIR / "saved-objects.ndjson").read_text().splitlines() if line]
# Fluent Bit's built-in cri multiline parser (src/multiline/flb_ml_parser_cri.c): the containerd line prefix.
CRI_LINE = re.compile(r"^(?P<time>.+?) (?P<stream>stdout|stderr) (?P<_p>F|P) (?P<log>.*)$")


def output() -> Section:
    return fluentbit.output("opensearch")


# -- the values file ---------------------------------------------------------------------------


def test_opensearch_output_uses_sigv4_tls_and_the_required_switches() -> None:
    out = output()
    assert out["Host"] == "${OPENSEARCH_HOST}"
    assert out["AWS_Region"] == "${AWS_REGION}"
    assert out.on("AWS_Auth") and out.on("tls") and out.on("tls.verify")
    assert out["Port"] == "443"
    assert out.on("Suppress_Type_Name") and out.on("Replace_Dots") and out.on("Logstash_Format")
    assert int(out["Retry_Limit"]) > 0
    assert out["storage.total_limit_size"]


def test_buffering_is_on_the_filesystem_of_a_mounted_host_path() -> None:
    (service,) = fluentbit.all_sections("SERVICE")
    (tail,) = fluentbit.all_sections("INPUT")
    assert tail["Name"] == "tail" and tail["storage.type"] == "filesystem"
    mounts = [m["mountPath"] for m in fluentbit.values()["daemonSetVolumeMounts"] if not m.get("readOnly")]
    for path in (service["storage.path"], tail["DB"]):
        assert any(path.startswith(mount + "/") for mount in mounts), f"{path} is not on a writable host path"


def test_tail_reads_the_app_namespace_and_parses_cri_lines() -> None:
    (tail,) = fluentbit.all_sections("INPUT")
    namespace = cluster.load().app_namespace
    assert fnmatch.fnmatch(f"/var/log/containers/taskboard-7d9f-abcde_{namespace}_taskboard-0123.log", tail["Path"])
    assert not fnmatch.fnmatch("/var/log/containers/coredns-1_kube-system_coredns-0123.log", tail["Path"])
    assert tail["multiline.parser"] == "cri"


def test_kubernetes_filter_merges_the_service_json_with_a_defined_parser() -> None:
    (kube,) = [s for s in fluentbit.all_sections("FILTER") if s["Name"] == "kubernetes"]
    assert kube.on("Merge_Log") and not kube.on("Keep_Log") and kube.on("Labels")
    parser = fluentbit.parser(kube["Merge_Parser"])
    assert parser["Format"] == "json"
    assert parser["Time_Key"] == "timestamp"  # app/logs.py: JsonFormatter(timestamp="timestamp")


def test_values_match_the_cluster_names_and_the_chart_layout() -> None:
    values, names = fluentbit.values(), cluster.load()
    assert values["serviceMonitor"]["enabled"] is True
    assert values["serviceMonitor"]["selector"] == names.rule_selector_labels  # lesson 4
    assert values["serviceAccount"]["name"] == names.logging_service_account
    (service,) = fluentbit.all_sections("SERVICE")
    parsers = [value for key, value in service.entries if key == "Parsers_File"]
    # fluent-bit chart 0.58 mounts its config map at /fluent-bit/etc/conf/.
    assert "/fluent-bit/etc/conf/custom_parsers.conf" in parsers


def test_every_environment_variable_the_config_reads_is_set() -> None:
    config_text = "\n".join(str(v) for v in fluentbit.values()["config"].values())
    used = set(re.findall(r"\$\{(\w+)\}", config_text))
    defined = {e["name"] for e in fluentbit.values()["envWithTpl"]}
    assert used == {"OPENSEARCH_HOST", "AWS_REGION"} <= defined


def test_index_template_retention_and_saved_objects_agree_on_the_index() -> None:
    pattern = fluentbit.log_index_pattern()
    assert TEMPLATE["index_patterns"] == [pattern]
    assert ISM["policy"]["ism_template"][0]["index_patterns"] == [pattern]
    patterns = [o for o in SAVED if o["type"] == "index-pattern"]
    assert [p["attributes"]["title"] for p in patterns] == [pattern]
    assert MAPPING["dynamic"] is False


def test_retention_deletes_old_indices() -> None:
    states = {s["name"]: s for s in ISM["policy"]["states"]}
    assert ISM["policy"]["default_state"] in states
    assert any("delete" in action for action in states["delete"]["actions"])
    for state in states.values():
        for transition in state["transitions"]:
            assert transition["state_name"] in states


def _mapped(path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = {"properties": MAPPING["properties"]}
    for part in path.split("."):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node


@pytest.mark.parametrize("saved", [o for o in SAVED if o["type"] == "search"], ids=lambda o: o["id"])
def test_saved_searches_use_mapped_fields_and_the_index_pattern(saved: dict[str, Any]) -> None:
    source = json.loads(saved["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    (reference,) = saved["references"]
    assert reference["name"] == source["indexRefName"]
    assert reference["id"] in {o["id"] for o in SAVED if o["type"] == "index-pattern"}
    fields = [*saved["attributes"]["columns"], *(f for f, _ in saved["attributes"]["sort"])]
    fields += re.findall(r"([A-Za-z_@][\w.@]*)\s*(?::|>=|<=|>|<)", source["query"]["query"])
    for field in fields:
        assert _mapped(field) is not None, f"{saved['id']}: {field} is not in the index template"


def test_saved_searches_cover_errors_by_route_and_one_trace() -> None:
    queries = {o["id"]: o for o in SAVED if o["type"] == "search"}
    errors = json.loads(
        queries["taskboard-server-errors-by-route"]["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
    )
    assert "status >= 500" in errors["query"]["query"]
    assert queries["taskboard-server-errors-by-route"]["attributes"]["sort"][0][0] == "route"
    trace = json.loads(queries["taskboard-one-trace"]["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert trace["query"]["query"].startswith("trace_id:")


# -- real lines through the pipeline ------------------------------------------------------------


def fluent_bit_time_format(fmt: str) -> str:
    """Fluent Bit's strptime format in Python's: %L (fractional seconds) is %f."""
    return fmt.replace("%L", "%f")


def kubernetes_metadata() -> dict[str, Any]:
    """The shape the kubernetes filter adds (Labels On, Annotations Off), with realistic values."""
    return {
        "pod_name": "taskboard-7d9f8c6b5-x2k4q",
        "namespace_name": cluster.load().app_namespace,
        "pod_id": str(uuid.uuid4()),
        "pod_ip": "10.0.12.34",
        "labels": {
            "app.kubernetes.io/name": "taskboard",
            "app.kubernetes.io/part-of": "taskboard",
            "rollouts-pod-template-hash": "7d9f8c6b5",
        },
        "host": "ip-10-0-12-7.eu-west-1.compute.internal",
        "container_name": "taskboard",
        "docker_id": uuid.uuid4().hex * 2,
        "container_hash": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/taskboard@sha256:" + "ab" * 32,
        "container_image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/taskboard:1.0.0",
    }


def replace_dots(value: Any) -> Any:
    if isinstance(value, dict):
        return {key.replace(".", "_"): replace_dots(item) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_dots(item) for item in value]
    return value


def ship(line: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """One stdout line of the container → (index name, document), as the values file configures it."""
    cri = f"{now.strftime('%Y-%m-%dT%H:%M:%S.%f')}123Z stdout F {line}"
    match = CRI_LINE.fullmatch(cri)
    assert match, cri
    record: dict[str, Any] = match.groupdict()  # the cri parser keeps its time key
    record_time = datetime.strptime(record["time"][:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    (kube,) = [s for s in fluentbit.all_sections("FILTER") if s["Name"] == "kubernetes"]
    parser = fluentbit.parser(kube["Merge_Parser"])
    try:
        parsed = json.loads(record["log"])
    except ValueError:
        parsed = None
    if kube.on("Merge_Log") and isinstance(parsed, dict):
        time_key = parser["Time_Key"]
        if time_key in parsed:
            record_time = datetime.strptime(parsed[time_key], fluent_bit_time_format(parser["Time_Format"]))
            if not parser.on("Time_Keep"):
                del parsed[time_key]
        record.update(parsed)
        if not kube.on("Keep_Log"):
            del record["log"]
    record["kubernetes"] = kubernetes_metadata()

    for modify in (s for s in fluentbit.all_sections("FILTER") if s["Name"] == "modify"):
        for key, value in modify.entries:
            if key == "Remove":
                record.pop(value, None)

    out = output()
    if out.on("Replace_Dots"):
        record = replace_dots(record)
    assert out.on("Logstash_Format")
    record[out["Time_Key"]] = record_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    index = f"{out['Logstash_Prefix']}-{record_time.strftime(out['Logstash_DateFormat'])}"
    return index, record


def _date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _integer(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


# What a field's value must look like for its type in the index template to take it.
CHECKS: dict[str, Callable[[Any], bool]] = {
    "keyword": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str),
    "short": lambda v: _integer(v, -(2**15), 2**15 - 1),
    "integer": lambda v: _integer(v, -(2**31), 2**31 - 1),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _date,
    "date_nanos": _date,
    "flat_object": lambda v: isinstance(v, dict) and all(_scalar(x) for x in v.values()),
}


def check_document(doc: dict[str, Any], properties: dict[str, Any], prefix: str = "") -> list[str]:
    problems = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        mapping = properties.get(key)
        if mapping is None:
            problems.append(f"{path}: not in the index template (value {value!r})")
        elif "properties" in mapping:
            if not isinstance(value, dict):
                problems.append(f"{path}: an object in the template, {type(value).__name__} in the log")
            else:
                problems += check_document(value, mapping["properties"], f"{path}.")
        elif not CHECKS[mapping["type"]](value):
            problems.append(f"{path}: {mapping['type']} in the template, {value!r} in the log")
    return problems


def test_real_log_lines_fit_the_index_template(live: Live) -> None:
    lines = [line for line in live.app_log.read_text().splitlines() if line.strip()]
    assert len(lines) > live.traffic.sent / 2, "the service should log a line per request"
    now = datetime.now(UTC)
    seen: set[str] = set()
    problems: list[str] = []
    for line in lines:
        index, doc = ship(line, now)
        assert fnmatch.fnmatch(index, TEMPLATE["index_patterns"][0]), index
        problems += [f"{p}\n    in: {line[:300]}" for p in check_document(doc, MAPPING["properties"])]
        seen |= set(doc) | {f"kubernetes.{k}" for k in doc["kubernetes"]}
    assert problems == [], "\n".join(problems[:20])
    # The lines exercised the fields that matter, trace context included (the stack exports traces).
    expected = {"@timestamp", "timestamp", "level", "logger", "message", "method", "route", "path", "status"}
    expected |= {"duration_ms", "request_id", "trace_id", "span_id", "kubernetes.labels", "kubernetes.pod_name"}
    assert expected <= seen, sorted(expected - seen)


def test_label_keys_lose_their_dots_like_replace_dots_does(live: Live) -> None:
    _, doc = ship(live.app_log.read_text().splitlines()[0], datetime.now(UTC))
    assert "app_kubernetes_io/name" in doc["kubernetes"]["labels"]
    assert not any("." in key for key in doc["kubernetes"]["labels"])
