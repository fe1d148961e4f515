"""What every workflow promises (STYLE.md, Flask's CI): pinned actions, least privilege, timeouts,
cancelled superseded runs; and that everything a workflow names — make targets, scripts, paths, path
filters, reusable-workflow inputs, environments, variables — exists in this repository."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.github.workflows import (
    GITHUB,
    ROOT,
    Workflow,
    all_jobs,
    filter_regex,
    make_targets,
    run_blocks,
    steps,
    strip_expressions,
    tracked_files,
    uses_lines,
    workflow,
    workflows,
)

ENVIRONMENTS = ("dev", "uat", "prod")
SHA = re.compile(r"^[0-9a-f]{40}$")
# Files the workflows write before they read them, each with what writes it; everything else a workflow
# names must be in the repository.
WRITTEN_BY_THE_WORKFLOWS = {
    "infra/*.plan.txt": "the plan step of infra-environment.yml",
    "infra/.terraform.lock.hcl": "infra/run.sh init (terraform init)",
    "infra/addons/.terraform.lock.hcl": "infra/run.sh init (terraform init)",
    "infra/*.tfplan": "infra/run.sh plan -out=<env>.tfplan",
    "infra/addons/*.tfplan": "infra/run.sh plan -out=<env>.tfplan",
    "reports/": "make test and make slo-check",
    "reports/slo/": "make slo-check",
    "reports/fresh/": "make fresh-check",
}
_PATH_TOKEN = re.compile(
    r"(?<![\w./$-])((?:\.github|app|infra|k8s|tests|observability|dashboards|loadtest|local|docs|reports)/[\w./*$@{}-]*)"
)
_SHELL_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")


def _ids(item: Any) -> str:
    return str(item)


# -- least privilege, timeouts, concurrency -------------------------------------------------------


@pytest.mark.parametrize("flow", workflows(), ids=lambda f: f.name)
def test_no_permission_by_default(flow: Workflow) -> None:
    assert flow.doc.get("permissions") == {}, f"{flow.name}: set `permissions: {{}}` at the top"


@pytest.mark.parametrize("flow", workflows(), ids=lambda f: f.name)
def test_every_job_states_its_permissions(flow: Workflow) -> None:
    for job_id, job in flow.jobs.items():
        assert isinstance(job.get("permissions"), dict), f"{flow.name}: job {job_id} grants nothing explicitly"
        for scope, level in job["permissions"].items():
            assert level in ("read", "write"), f"{flow.name}: {job_id} {scope}: {level}"


@pytest.mark.parametrize("flow", workflows(), ids=lambda f: f.name)
def test_every_job_has_a_timeout(flow: Workflow) -> None:
    for job_id, job in flow.jobs.items():
        if "uses" in job:
            # A reusable-workflow call takes no timeout; the called workflow's jobs have theirs.
            called = _called_workflow(job["uses"])
            assert all("timeout-minutes" in j for j in called.jobs.values()), f"{called.name} lacks timeouts"
            continue
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int), f"{flow.name}: job {job_id} has no timeout-minutes"
        assert 1 <= timeout <= 120, f"{flow.name}: job {job_id} timeout {timeout}"


@pytest.mark.parametrize("flow", [w for w in workflows() if not w.reusable_only], ids=lambda f: f.name)
def test_runs_are_grouped_and_superseded_checks_cancelled(flow: Workflow) -> None:
    concurrency = flow.doc.get("concurrency")
    assert isinstance(concurrency, dict) and concurrency.get("group"), f"{flow.name}: no concurrency group"
    cancel = concurrency.get("cancel-in-progress")
    if {"pull_request", "push"} & set(flow.triggers) and not _deploys(flow):
        assert cancel is True, f"{flow.name}: checks superseded by a newer push must be cancelled"
    elif _deploys(flow):
        # Never cancel a run that may be applying or pushing half-way; pull requests may.
        assert cancel is False or "pull_request" in str(cancel), f"{flow.name}: cancel-in-progress {cancel!r}"


def test_every_apply_is_serialised_per_environment() -> None:
    apply = workflow("infra-environment.yml").jobs["apply"]
    assert apply["concurrency"] == {
        "group": "infra-apply-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }


# -- pinned actions and images ----------------------------------------------------------------------


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for flow, number, line in uses_lines():
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(\S+))?\s*$", line)
        assert match, f"{flow.name}:{number}: {line.strip()}"
        reference, comment = match[1], match[2]
        if reference.startswith("$/"):
            continue  # this repository, at the running commit
        assert not reference.startswith("./"), f"{flow.name}:{number}: use $/ for this repository's workflows"
        assert not reference.startswith("docker://"), f"{flow.name}:{number}: no container actions"
        action, _, ref = reference.partition("@")
        assert SHA.match(ref), f"{flow.name}:{number}: {action} is pinned to {ref!r}, not a 40-hex commit"
        assert comment and re.fullmatch(r"v\d+\.\d+\.\d+", comment), (
            f"{flow.name}:{number}: {action}@{ref} needs its release as a comment, e.g. # v1.2.3"
        )
        pins[action].add((ref, comment))
    assert pins, "no action found"
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}, "one pin per action"


def test_container_images_are_pinned_by_digest_and_the_same_everywhere() -> None:
    images = set()
    for flow, job_id, job in all_jobs():
        container = job.get("container")
        if container is None:
            continue
        image = container if isinstance(container, str) else container["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), f"{flow.name}: {job_id}: {image}"
        images.add(image)
    assert len(images) == 1, images
    assert next(iter(images)).startswith("debian:bookworm-"), "the machines the project is tested on: Debian 12"


def test_no_checkout_keeps_credentials() -> None:
    checkouts = 0
    for flow, job_id, job in all_jobs():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                checkouts += 1
                assert step.get("with", {}).get("persist-credentials") is False, f"{flow.name}: {job_id}"
    assert checkouts >= len(workflows()) - 1


# -- OIDC: the trust each role has (infra/iam.tf, lesson 12 of shared/ANCHORS.md) ------------------


def test_apply_role_is_assumed_only_from_its_github_environment() -> None:
    """The apply roles trust `environment:<env>` alone: a job without `environment:` is refused by AWS."""
    found = 0
    for flow, job_id, job in all_jobs():
        text = yaml.safe_dump(job)
        if re.search(r"\.apply\b|'\.apply", text) and "uses" not in job:
            found += 1
            assert "environment" in job, f"{flow.name}: {job_id} assumes an apply role outside its environment"
    assert found >= 2


def test_jobs_with_an_oidc_token_and_no_environment_run_only_where_the_roles_trust() -> None:
    """plan and push roles trust `pull_request` and `ref:refs/heads/main` (and the environment)."""
    for flow, job_id, job in all_jobs():
        if job.get("permissions", {}).get("id-token") != "write" or "environment" in job:
            continue
        if flow.reusable_only:
            callers = [
                (caller, caller_id, caller_job)
                for caller, caller_id, caller_job in all_jobs()
                if str(caller_job.get("uses", "")).endswith(f"/workflows/{flow.name}")
            ]
            assert callers, f"{flow.name} is called by nothing"
            for caller, caller_id, caller_job in callers:
                assert _pinned_to_trusted_refs(caller, caller_id, caller_job), f"{caller.name}: {caller_id}"
        else:
            assert _pinned_to_trusted_refs(flow, job_id, job), f"{flow.name}: {job_id} may run on any ref"


def _pinned_to_trusted_refs(flow: Workflow, job_id: str, job: dict[str, Any]) -> bool:
    condition = str(job.get("if", ""))
    if "refs/heads/main" in condition or "github.event_name == 'pull_request'" in condition:
        return True
    needs = job.get("needs", [])
    needs = [needs] if isinstance(needs, str) else needs
    return any(_pinned_to_trusted_refs(flow, need, flow.jobs[need]) for need in needs)


def test_environments_are_the_overlays() -> None:
    used = set()
    for _flow, _job_id, job in all_jobs():
        if "environment" in job:
            used.add(str(job["environment"]))
    assert used == {"${{ inputs.environment }}"}, used
    for flow in workflows():
        for trigger in ("workflow_dispatch",):
            for name, spec in ((flow.triggers.get(trigger) or {}).get("inputs") or {}).items():
                if spec.get("type") == "choice":
                    assert set(spec["options"]) <= set(ENVIRONMENTS), f"{flow.name}: {name}"
    overlays = {path.name for path in (ROOT / "k8s" / "overlays").iterdir() if path.is_dir()}
    tfvars = {path.stem for path in (ROOT / "infra" / "env").glob("*.tfvars")}
    assert overlays == tfvars == set(ENVIRONMENTS)


# -- everything a workflow names exists ---------------------------------------------------------------


def test_every_make_target_a_workflow_runs_exists() -> None:
    wanted: set[tuple[str, str]] = set()
    for flow, job_id, script in run_blocks():
        for command in _commands(script):
            if command and command[0] == "make":
                targets = [word for word in command[1:] if not word.startswith("-") and "=" not in word]
                assert targets, f"{flow.name}: {job_id}: bare `make`"
                wanted.update((flow.name, target) for target in targets)
    assert wanted, "no workflow runs make"
    missing = sorted((name, target) for name, target in wanted if target not in make_targets())
    assert missing == [], f"make targets the workflows run but the Makefile lacks: {missing}"


def test_every_script_and_path_a_workflow_names_exists() -> None:
    """Against the repository's files (tracked, or new in this change), not whatever this machine holds."""
    files = [*tracked_files(), *_new_files()]
    folders = {str(Path(file).parents[i]) for file in files for i in range(len(Path(file).parents) - 1)}
    known = [*files, *(f"{folder}/" for folder in folders), *folders]
    named = 0
    used_allowances = set()
    for flow in workflows():
        for raw in _PATH_TOKEN.findall(strip_expressions(_scripts_and_inputs(flow), "*")):
            path = _SHELL_VARIABLE.sub("*", raw).rstrip(".,;:)'\"`")
            path = re.sub(r"\*+", "*", path)
            named += 1
            allowance = next((p for p in WRITTEN_BY_THE_WORKFLOWS if filter_regex(p).fullmatch(path)), None)
            if allowance:
                used_allowances.add(allowance)
                continue
            regex = filter_regex(path)
            assert any(regex.fullmatch(candidate) for candidate in known), (
                f"{flow.name} names {raw}, which is not in the repository"
            )
    assert named > 20
    assert set(WRITTEN_BY_THE_WORKFLOWS) == used_allowances, "stale entries in WRITTEN_BY_THE_WORKFLOWS"


def test_every_script_a_workflow_runs_is_executable_and_tracked() -> None:
    scripts = set()
    for _flow, _job_id, script in run_blocks():
        for command in _commands(script):
            for word in command:
                if word.startswith((".github/scripts/", "infra/run.sh")):
                    scripts.add(word)
    assert {"infra/run.sh", ".github/scripts/open-pr.sh", ".github/scripts/overlay.py"} <= scripts, scripts
    for script in scripts:
        path = ROOT / script
        assert path.is_file(), script
        assert script in tracked_files() or _is_new(script), f"{script} is not in git"
        if path.suffix != ".py":
            assert path.stat().st_mode & 0o111, f"{script} is not executable"


@pytest.mark.parametrize("flow", workflows(), ids=lambda f: f.name)
def test_path_filters_match_real_files(flow: Workflow) -> None:
    for event in ("push", "pull_request"):
        spec = flow.triggers.get(event) or {}
        for pattern in spec.get("paths", []):
            regex = filter_regex(pattern.lstrip("!"))
            files = [*tracked_files(), *_new_files()]
            assert any(regex.fullmatch(file) for file in files), f"{flow.name}: {event} path {pattern} matches nothing"


def test_each_deploy_artefact_has_its_path_filtered_workflow() -> None:
    """One workflow per artefact (microservices-demo), each also run by a change to itself."""
    expected = {
        "image.yml": {"app/**"},
        "infra.yml": {"infra/**"},
        "k8s.yml": {"k8s/**"},
        "observability.yml": {"observability/**", "dashboards/**"},
    }
    for name, folders in expected.items():
        flow = workflow(name)
        for event in ("push", "pull_request"):
            if event not in flow.triggers:
                continue
            paths = set(flow.triggers[event]["paths"])
            assert folders <= paths, f"{name} {event}: {sorted(paths)}"
            assert f".github/workflows/{name}" in paths, f"{name} {event} does not run when it changes itself"
            for folder in folders:
                assert (ROOT / folder.removesuffix("/**")).is_dir()
    assert workflow("image.yml").triggers["push"]["branches"] == ["main"]
    assert "pull_request" not in workflow("image.yml").triggers, "images are built from main only"


def test_reusable_workflow_calls_pass_exactly_the_declared_inputs() -> None:
    calls = 0
    for flow, job_id, job in all_jobs():
        if "uses" not in job:
            continue
        calls += 1
        called = _called_workflow(job["uses"])
        declared = called.triggers["workflow_call"]["inputs"]
        given = set(job.get("with", {}))
        required = {name for name, spec in declared.items() if spec.get("required")}
        assert required <= given <= set(declared), f"{flow.name}: {job_id} passes {sorted(given)}"
    assert calls == 4


def test_terraform_runs_through_run_sh() -> None:
    """init, plan and apply only through infra/run.sh (workspace and tfvars guardrails); fmt, validate and
    show need neither a backend nor credentials, and run.sh has no command for them."""
    direct = 0
    for flow, job_id, script in run_blocks():
        for command in _commands(script):
            if command and command[0] == "terraform":
                direct += 1
                words = [word for word in command[1:] if not word.startswith("-chdir")]
                subcommand = words[0] if words else ""
                allowed = subcommand in ("fmt", "validate", "show") or (
                    subcommand == "init" and "-backend=false" in words
                )
                assert allowed, f"{flow.name}: {job_id}: {' '.join(command)}: use infra/run.sh"
    assert direct >= 3


def test_prod_apply_is_confirmed_only_in_the_prod_environment() -> None:
    apply = workflow("infra-environment.yml").jobs["apply"]
    step = next(s for s in steps(apply) if "CONFIRM_PROD" in s.get("env", {}))
    assert step["env"]["CONFIRM_PROD"] == "${{ inputs.environment == 'prod' && 'yes' || 'no' }}"
    assert apply["environment"] == "${{ inputs.environment }}"


def test_the_reviewed_plan_is_the_applied_plan() -> None:
    """apply downloads the artifact the plan job uploaded and applies the saved plan file it holds."""
    flow = workflow("infra-environment.yml")
    plan, apply = flow.jobs["plan"], flow.jobs["apply"]
    assert apply["needs"] == "plan"
    upload = next(s for s in steps(plan) if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    download = next(s for s in steps(apply) if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"] == "infra-plan-${{ inputs.environment }}"
    assert upload["with"]["include-hidden-files"] is True, "the .terraform.lock.hcl files are hidden files"
    uploaded = {line.strip() for line in upload["with"]["path"].splitlines() if line.strip()}
    assert {
        "infra/${{ inputs.environment }}.tfplan",
        "infra/addons/${{ inputs.environment }}.tfplan",
        "infra/.terraform.lock.hcl",
        "infra/addons/.terraform.lock.hcl",
    } <= uploaded
    plan_script = "\n".join(str(s.get("run", "")) for s in steps(plan))
    apply_script = "\n".join(str(s.get("run", "")) for s in steps(apply))
    assert '-out="$ENVIRONMENT.tfplan"' in plan_script
    assert re.search(r'infra/run\.sh -e "\$ENVIRONMENT" .*apply .*"\$ENVIRONMENT\.tfplan"', apply_script)
    assert "-auto-approve" not in apply_script, "a saved plan needs no approval flag; a fresh plan must not run"
    # The artifact is unpacked where the plan wrote it (its files share the folder infra/).
    assert download["with"]["path"] == "infra"
    assert all(path.startswith("infra/") for path in uploaded)


def test_release_pull_requests_change_one_file() -> None:
    """image.yml and promote.yml open their pull requests with open-pr.sh and exactly one overlay file."""
    for name, file in (
        ("image.yml", "k8s/overlays/dev/kustomization.yaml"),
        ("promote.yml", "k8s/overlays/$TARGET/kustomization.yaml"),
    ):
        scripts = [script for flow, _job, script in run_blocks() if flow.name == name and "open-pr.sh" in script]
        assert len(scripts) == 1, name
        command = next(c for c in _commands(scripts[0]) if c and c[0].endswith("open-pr.sh"))
        assert command[4:] == [file], command
        assert "overlay.py set-tag" in scripts[0]


# -- the README of .github/ -------------------------------------------------------------------------


def test_the_workflows_readme_covers_every_workflow_variable_secret_and_script() -> None:
    readme = (GITHUB / "README.md").read_text()
    for flow in workflows():
        assert f"`{flow.name}`" in readme, f".github/README.md does not describe {flow.name}"
    names = set()
    for flow in workflows():
        names.update(re.findall(r"\b(?:vars|secrets)\.([A-Z][A-Z0-9_]*)", flow.text))
    assert names >= {"AWS_ROLES_DEV", "TF_BACKEND_HCL", "RELEASE_PR_TOKEN"}
    for name in names:
        assert f"`{name}`" in readme, f".github/README.md does not document {name}"
    for script in (GITHUB / "scripts").iterdir():
        assert f"`{script.name}`" in readme, f".github/README.md does not describe scripts/{script.name}"
    for environment in ENVIRONMENTS:
        assert f"`{environment}`" in readme


# -- helpers ------------------------------------------------------------------------------------------


def _deploys(flow: Workflow) -> bool:
    return "id-token: write" in flow.text or "contents: write" in flow.text


def _called_workflow(uses: str) -> Workflow:
    assert uses.startswith("$/.github/workflows/"), uses
    return workflow(uses.rsplit("/", 1)[1])


def _commands(script: str) -> list[list[str]]:
    """Simple commands of a shell script: split on newlines (after joining continuations), ;, && and |."""
    joined = re.sub(r"\\\n\s*", " ", strip_expressions(script))
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*(?:;|&&|\|\||\|)\s*", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            while words and (re.match(r"^[A-Za-z_]+=", words[0]) or words[0] in ("if", "then", "else", "!", "{", "(")):
                words = words[1:]
            if words:
                commands.append(words)
    return commands


def _scripts_and_inputs(flow: Workflow) -> str:
    """The run scripts and the `with:` values of a workflow, where it names files."""
    parts = []
    for _job_id, job in flow.jobs.items():
        for step in steps(job):
            if "run" in step:
                parts.append(str(step["run"]))
            for value in (step.get("with") or {}).values():
                parts.append(str(value))
    return "\n".join(parts)


def _new_files() -> list[str]:
    """Files not yet committed (this change set): the lead commits them with it."""
    result = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def _is_new(path: str) -> bool:
    return path in _new_files()
