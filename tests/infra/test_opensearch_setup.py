"""infra/addons/opensearch-setup.sh, the post-deploy Job's script, against a fake curl that plays STS
and OpenSearch: what it applies, under which names, signed with which credentials."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.terraform import INFRA, ROOT

SCRIPT = INFRA / "addons" / "opensearch-setup.sh"
SOURCES = ROOT / "observability" / "opensearch"

# Records each call as JSON (method, URL, signing arguments, body) and answers like STS and OpenSearch.
FAKE_CURL = r"""#!/usr/bin/env bash
set -u
out="" method="GET" url="" sigv4="" user="" token="" body="" form=()
while (($#)); do
  case "$1" in
    -o) out="$2"; shift ;;
    -X) method="$2"; shift ;;
    --aws-sigv4) sigv4="$2"; shift ;;
    --user) user="$2"; shift ;;
    -H) [[ "$2" == x-amz-security-token:* ]] && token="${2#x-amz-security-token: }"; shift ;;
    --data-binary) body="$(cat "${2#@}")"; shift ;;
    --data-urlencode) form+=("$2"); shift ;;
    -*) ;;
    *) url="$1" ;;
  esac
  shift
done
[[ ${#form[@]} -gt 0 ]] && method="POST"
python3 -c '
import json, sys
names = ["method", "url", "sigv4", "user", "token", "body"]
print(json.dumps({**dict(zip(names, sys.argv[1:7])), "form": sys.argv[7:]}))
' "$method" "$url" "$sigv4" "$user" "$token" "$body" "${form[@]}" >>"$FAKE_DIR/calls"
case "$url" in
  https://sts.*)
    {
      echo '<AssumeRoleWithWebIdentityResponse><Credentials>'
      echo '<SessionToken>SESSIONTOKEN</SessionToken>'
      echo '<SecretAccessKey>SECRETKEY</SecretAccessKey>'
      echo '<AccessKeyId>KEYID</AccessKeyId>'
      echo '</Credentials></AssumeRoleWithWebIdentityResponse>'
    } >"$out"
    ;;
  */_plugins/_ism/policies/*)
    if [[ "$method" == GET ]]; then
      if [[ -n "${FAKE_POLICY_EXISTS:-}" ]]; then
        printf '{"_id": "x", "_version": 3, "_seq_no": 7, "_primary_term": 2, "policy": {}}' >"$out"
      else
        printf '{"error": "not found"}' >"$out"; exit 22
      fi
    fi
    ;;
  *) printf '{"acknowledged": true}' >"$out" ;;
esac
exit 0
"""


def run_setup(
    tmp_path: Path, files: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "curl").write_text(FAKE_CURL)
    (fake / "curl").chmod(0o755)
    token = tmp_path / "token"
    token.write_text("WEB-IDENTITY-TOKEN")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "FAKE_DIR": str(tmp_path),
        "OPENSEARCH_ENDPOINT": "vpc-logs.eu-west-1.es.amazonaws.com",
        "AWS_REGION": "eu-west-1",
        "AWS_ROLE_ARN": "role-of-the-setup-job",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "FLUENT_BIT_ROLE_ARN": "role-of-fluent-bit",
        "GRAFANA_ROLE_ARN": "role-of-grafana",
        "JAEGER_ROLE_ARN": "role-of-jaeger",
        "LOG_INDEX_PATTERN": "taskboard-logs-*",
        "TRACE_INDEX_PATTERN": "jaeger-*",
        "FILES_DIR": str(files),
        "WORK_DIR": str(work),
        **(extra_env or {}),
    }
    result = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    calls_file = tmp_path / "calls"
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()] if calls_file.exists() else []
    return result, calls


ENDPOINT = "https://vpc-logs.eu-west-1.es.amazonaws.com/"


def test_it_applies_the_observability_files_under_their_stated_names(tmp_path: Path) -> None:
    assert shutil.which("python3")
    result, calls = run_setup(tmp_path, SOURCES)
    assert result.returncode == 0, result.stderr

    sts = calls[0]
    assert sts["url"] == "https://sts.eu-west-1.amazonaws.com/"
    assert "Action=AssumeRoleWithWebIdentity" in sts["form"]
    assert "RoleArn=role-of-the-setup-job" in sts["form"]
    assert f"WebIdentityToken@{tmp_path / 'token'}" in sts["form"]

    requests = [(call["method"], str(call["url"]).removeprefix(ENDPOINT)) for call in calls[1:]]
    assert requests == [
        ("PUT", "_index_template/taskboard-logs"),
        ("GET", "_plugins/_ism/policies/taskboard-logs-retention"),
        ("PUT", "_plugins/_ism/policies/taskboard-logs-retention"),
        ("POST", "_dashboards/api/saved_objects/_import?overwrite=true"),
        ("PUT", "_plugins/_security/api/roles/taskboard_log_writer"),
        ("PUT", "_plugins/_security/api/rolesmapping/taskboard_log_writer"),
        ("PUT", "_plugins/_security/api/roles/taskboard_log_reader"),
        ("PUT", "_plugins/_security/api/rolesmapping/taskboard_log_reader"),
        ("PUT", "_plugins/_security/api/roles/taskboard_trace_writer"),
        ("PUT", "_plugins/_security/api/rolesmapping/taskboard_trace_writer"),
    ]
    for call in calls[1:]:
        assert call["sigv4"] == "aws:amz:eu-west-1:es"
        assert call["user"] == "KEYID:SECRETKEY"
        assert call["token"] == "SESSIONTOKEN"

    bodies = {str(call["url"]).removeprefix(ENDPOINT): call["body"] for call in calls[1:]}
    assert json.loads(str(bodies["_index_template/taskboard-logs"])) == json.loads(
        (SOURCES / "index-template.json").read_text()
    )
    saved_objects = str(bodies["_dashboards/api/saved_objects/_import?overwrite=true"])
    assert (SOURCES / "saved-objects.ndjson").read_text().strip() in saved_objects
    assert 'name="file"; filename="saved-objects.ndjson"' in saved_objects

    writer = json.loads(str(bodies["_plugins/_security/api/roles/taskboard_log_writer"]))
    assert writer["index_permissions"][0]["index_patterns"] == ["taskboard-logs-*"]
    assert json.loads(str(bodies["_plugins/_security/api/rolesmapping/taskboard_log_writer"])) == {
        "backend_roles": ["role-of-fluent-bit"]
    }
    assert json.loads(str(bodies["_plugins/_security/api/rolesmapping/taskboard_log_reader"])) == {
        "backend_roles": ["role-of-grafana"]
    }
    tracer = json.loads(str(bodies["_plugins/_security/api/roles/taskboard_trace_writer"]))
    assert tracer["index_permissions"][0]["index_patterns"] == ["jaeger-*"]
    assert json.loads(str(bodies["_plugins/_security/api/rolesmapping/taskboard_trace_writer"])) == {
        "backend_roles": ["role-of-jaeger"]
    }


def test_an_existing_ism_policy_is_updated_with_its_sequence_number(tmp_path: Path) -> None:
    result, calls = run_setup(tmp_path, SOURCES, {"FAKE_POLICY_EXISTS": "1"})
    assert result.returncode == 0, result.stderr
    urls = [str(call["url"]).removeprefix(ENDPOINT) for call in calls]
    assert "_plugins/_ism/policies/taskboard-logs-retention?if_seq_no=7&if_primary_term=2" in urls


def test_files_without_a_stated_name_use_their_file_name(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "audit.json").write_text('{"index_patterns": ["audit-*"], "template": {}}')
    (files / "retention.json").write_text('{"policy": {"states": []}}')
    (files / "notes.json").write_text('{"hello": "world"}')
    result, calls = run_setup(tmp_path, files)
    assert result.returncode == 0, result.stderr
    urls = [str(call["url"]).removeprefix(ENDPOINT) for call in calls[1:4]]
    assert urls == ["_index_template/audit", "_plugins/_ism/policies/retention", "_plugins/_ism/policies/retention"]
    assert "skipping notes.json" in result.stderr


@pytest.mark.parametrize("missing", ["OPENSEARCH_ENDPOINT", "AWS_ROLE_ARN", "JAEGER_ROLE_ARN", "LOG_INDEX_PATTERN"])
def test_it_refuses_to_run_without_its_settings(tmp_path: Path, missing: str) -> None:
    result, calls = run_setup(tmp_path, SOURCES, {missing: ""})
    assert result.returncode != 0
    assert missing in result.stderr
    assert calls == []


def test_it_fails_when_there_is_nothing_to_apply(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result, _ = run_setup(tmp_path, empty)
    assert result.returncode == 1
    assert "no index template or ISM policy" in result.stderr
