"""The scripts the workflows run, run here: overlay.py against copies of k8s/ rendered by kubectl
kustomize, open-pr.sh and infra-settings.sh against fake `gh` and real git, plan_comment.py on plans."""

from __future__ import annotations

import base64
import difflib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.github.workflows import ROOT, SCRIPTS, require

OVERLAY = SCRIPTS / "overlay.py"
OPEN_PR = SCRIPTS / "open-pr.sh"
INFRA_SETTINGS = SCRIPTS / "infra-settings.sh"
PLAN_COMMENT = SCRIPTS / "plan_comment.py"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """k8s/ as committed, in a folder of its own (overlay.py --root)."""
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def rendered_images(root: Path, environment: str) -> set[str]:
    kubectl = require("kubectl")
    result = run(kubectl, "kustomize", root / "k8s" / "overlays" / environment)
    assert result.returncode == 0, result.stderr
    images = set()
    for doc in yaml.safe_load_all(result.stdout):
        if not doc or doc.get("kind") not in ("Deployment", "Rollout", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            images.add(container["image"])
    return images


def infra_value(root: Path, environment: str, key: str) -> str:
    for line in (root / "k8s" / "overlays" / environment / "infra-outputs.env").read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1]
    raise AssertionError(key)


# -- overlay.py ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "uat", "prod"])
def test_set_tag_changes_one_line_and_every_workload_runs_the_new_image(repo_copy: Path, environment: str) -> None:
    kustomization = repo_copy / "k8s" / "overlays" / environment / "kustomization.yaml"
    before = kustomization.read_text()
    result = run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", environment, COMMIT)
    assert result.returncode == 0, result.stderr
    after = kustomization.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [f"-     newTag: {_tag(before)}", f'+     newTag: "{COMMIT}"'], changed
    repository = infra_value(repo_copy, environment, "ECR_REPOSITORY_URL")
    assert rendered_images(repo_copy, environment) == {f"{repository}:{COMMIT}"}
    # Nothing else in the copy of k8s/ changed.
    for path in (repo_copy / "k8s").rglob("*"):
        if path.is_file() and path != kustomization:
            assert path.read_bytes() == (ROOT / path.relative_to(repo_copy)).read_bytes(), path


def test_tag_reads_what_set_tag_wrote_and_a_second_set_changes_nothing(repo_copy: Path) -> None:
    assert run(sys.executable, OVERLAY, "--root", repo_copy, "tag", "uat").stdout.strip() == _tag(
        (ROOT / "k8s/overlays/uat/kustomization.yaml").read_text()
    )
    run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", "uat", COMMIT)
    first = (repo_copy / "k8s/overlays/uat/kustomization.yaml").read_text()
    result = run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", "uat", COMMIT)
    assert result.returncode == 0 and "already" in result.stderr
    assert (repo_copy / "k8s/overlays/uat/kustomization.yaml").read_text() == first
    assert run(sys.executable, OVERLAY, "--root", repo_copy, "tag", "uat").stdout.strip() == COMMIT


def test_a_tag_of_digits_stays_a_string(repo_copy: Path) -> None:
    """A short SHA like 1234567 or 12e4567 is a number in YAML unless quoted; kustomize must see the tag."""
    for tag in ("1234567", "12e4567"):
        assert run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", "dev", tag).returncode == 0
        repository = infra_value(repo_copy, "dev", "ECR_REPOSITORY_URL")
        assert rendered_images(repo_copy, "dev") == {f"{repository}:{tag}"}


@pytest.mark.parametrize("tag", ["", "-leading-dash", "has space", "a" * 129, "sha256:abc", "x/y"])
def test_set_tag_refuses_what_is_not_an_image_tag(repo_copy: Path, tag: str) -> None:
    before = (repo_copy / "k8s/overlays/dev/kustomization.yaml").read_text()
    result = run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", "dev", "--", tag)
    assert result.returncode == 1 and "not a valid image tag" in result.stderr
    assert (repo_copy / "k8s/overlays/dev/kustomization.yaml").read_text() == before


def test_refuses_an_overlay_it_cannot_edit_safely(repo_copy: Path) -> None:
    kustomization = repo_copy / "k8s/overlays/dev/kustomization.yaml"
    text = kustomization.read_text()
    kustomization.write_text(text.replace("images:\n", "images:\n  - name: other\n    newTag: x\n"))
    result = run(sys.executable, OVERLAY, "--root", repo_copy, "set-tag", "dev", COMMIT)
    assert result.returncode == 1 and "exactly one newTag" in result.stderr
    assert run(sys.executable, OVERLAY, "--root", repo_copy, "tag", "staging").returncode == 1


def test_value_refuses_placeholders_and_reads_real_values(repo_copy: Path) -> None:
    committed = run(sys.executable, OVERLAY, "--root", repo_copy, "value", "dev", "ECR_REPOSITORY_URL")
    assert committed.returncode == 1
    assert "placeholder" in committed.stderr and "infra/run.sh -e dev outputs" in committed.stderr
    env_file = repo_copy / "k8s/overlays/dev/infra-outputs.env"
    env_file.write_text(env_file.read_text().replace("000000000000", "123456789012"))
    real = run(sys.executable, OVERLAY, "--root", repo_copy, "value", "dev", "ECR_REPOSITORY_URL")
    assert real.returncode == 0, real.stderr
    assert real.stdout.strip() == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/taskboard-dev"
    assert run(sys.executable, OVERLAY, "--root", repo_copy, "value", "dev", "AWS_REGION").stdout.strip() == "eu-west-1"
    missing = run(sys.executable, OVERLAY, "--root", repo_copy, "value", "dev", "NO_SUCH_KEY")
    assert missing.returncode == 1 and "has no NO_SUCH_KEY" in missing.stderr


def test_every_key_the_workflows_read_is_in_every_infra_outputs_file() -> None:
    for environment in ("dev", "uat", "prod"):
        text = (ROOT / "k8s/overlays" / environment / "infra-outputs.env").read_text()
        for key in ("ECR_REPOSITORY_URL", "AWS_REGION", "CLUSTER_NAME"):
            assert f"\n{key}=" in f"\n{text}", (environment, key)


def test_next_follows_the_release_stages() -> None:
    assert run(sys.executable, OVERLAY, "next", "dev").stdout.strip() == "uat"
    assert run(sys.executable, OVERLAY, "next", "uat").stdout.strip() == "prod"
    assert run(sys.executable, OVERLAY, "next", "prod").returncode == 1


def _tag(kustomization: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in kustomization.splitlines() if "newTag:" in line)


# -- open-pr.sh ---------------------------------------------------------------------------------------

FAKE_GH = """#!/usr/bin/env bash
# Records its arguments; answers the look-ups open-pr.sh makes.
printf '%s\\n' "$*" >>"$GH_LOG"
case "$1 $2" in
  "pr list") printf '%s' "${FAKE_EXISTING_PR:-}" ;;
  "api repos/"*) [[ "$2" == */git/ref/heads/* ]] && exit "${FAKE_BRANCH_MISSING:-1}" ;;
esac
exit 0
"""


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    overlay_dir = repo / "k8s" / "overlays" / "dev"
    overlay_dir.mkdir(parents=True)
    (overlay_dir / "kustomization.yaml").write_text("images:\n  - name: taskboard\n    newTag: 1.0.0\n")
    (repo / "README.md").write_text("x\n")
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "init"],
    ):
        subprocess.run(command, cwd=repo, check=True, capture_output=True)
    return repo


def gh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_TOKEN": "fake",
        "GITHUB_REPOSITORY": "owner/name",
        "GITHUB_REF_NAME": "main",
        **extra,
    }


def gh_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "gh.log"
    return log.read_text().splitlines() if log.exists() else []


def test_open_pr_commits_the_one_file_through_the_api_and_opens_the_pull_request(
    tmp_path: Path, git_repo: Path
) -> None:
    file = "k8s/overlays/dev/kustomization.yaml"
    (git_repo / file).write_text(f'images:\n  - name: taskboard\n    newTag: "{COMMIT}"\n')
    body = tmp_path / "body.md"
    body.write_text("why\n")
    result = run(OPEN_PR, f"release/dev/{COMMIT}", "dev: release", body, file, cwd=git_repo, env=gh_env(tmp_path))
    assert result.returncode == 0, result.stderr
    calls = gh_calls(tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=git_repo, capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(["git", "rev-parse", f"HEAD:{file}"], cwd=git_repo, capture_output=True, text=True)
    assert calls[0].startswith("pr list --repo owner/name --head release/dev/")
    assert calls[1].startswith(f"api repos/owner/name/git/ref/heads/release/dev/{COMMIT}")
    branch = f"release/dev/{COMMIT}"
    assert calls[2] == f"api --method POST repos/owner/name/git/refs -f ref=refs/heads/{branch} -f sha={head} --silent"
    assert calls[3].startswith(f"api --method PUT repos/owner/name/contents/{file} -f message=dev: release ")
    assert f"-f sha={blob.stdout.strip()}" in calls[3] and f"-f branch=release/dev/{COMMIT}" in calls[3]
    content = calls[3].split("-f content=", 1)[1].split(" ", 1)[0]
    assert content == base64.b64encode((git_repo / file).read_bytes()).decode()
    assert (
        calls[4] == f"pr create --repo owner/name --base main --head {branch} --title dev: release --body-file {body}"
    )
    assert len(calls) == 5


def test_open_pr_refuses_when_anything_else_changed(tmp_path: Path, git_repo: Path) -> None:
    file = "k8s/overlays/dev/kustomization.yaml"
    (git_repo / file).write_text("images:\n  - name: taskboard\n    newTag: x\n")
    (git_repo / "README.md").write_text("changed too\n")
    body = tmp_path / "body.md"
    body.write_text("why\n")
    result = run(OPEN_PR, "release/dev/x", "t", body, file, cwd=git_repo, env=gh_env(tmp_path))
    assert result.returncode == 1 and "README.md changed too" in result.stderr
    assert gh_calls(tmp_path) == []


def test_open_pr_with_nothing_changed_or_an_open_pull_request_does_nothing(tmp_path: Path, git_repo: Path) -> None:
    file = "k8s/overlays/dev/kustomization.yaml"
    body = tmp_path / "body.md"
    body.write_text("why\n")
    unchanged = run(OPEN_PR, "release/dev/x", "t", body, file, cwd=git_repo, env=gh_env(tmp_path))
    assert unchanged.returncode == 0 and "nothing changed" in unchanged.stdout
    assert gh_calls(tmp_path) == []
    (git_repo / file).write_text("images:\n  - name: taskboard\n    newTag: y\n")
    env = gh_env(tmp_path, FAKE_EXISTING_PR="https://github.com/owner/name/pull/7")
    existing = run(OPEN_PR, "release/dev/y", "t", body, file, cwd=git_repo, env=env)
    assert existing.returncode == 0 and "pull/7 already proposes" in existing.stdout
    assert [call.split()[:2] for call in gh_calls(tmp_path)] == [["pr", "list"]]


def test_open_pr_refuses_a_branch_left_without_its_pull_request(tmp_path: Path, git_repo: Path) -> None:
    file = "k8s/overlays/dev/kustomization.yaml"
    (git_repo / file).write_text("images:\n  - name: taskboard\n    newTag: z\n")
    body = tmp_path / "body.md"
    body.write_text("why\n")
    result = run(OPEN_PR, "release/dev/z", "t", body, file, cwd=git_repo, env=gh_env(tmp_path, FAKE_BRANCH_MISSING="0"))
    assert result.returncode == 1 and "exists without an open pull request" in result.stderr
    assert not any(call.startswith(("pr create", "api --method")) for call in gh_calls(tmp_path))


def test_propose_overlay_values_proposes_only_infra_outputs(tmp_path: Path, git_repo: Path) -> None:
    scripts = git_repo / ".github" / "scripts"
    scripts.mkdir(parents=True)
    for script in ("propose-overlay-values.sh", "open-pr.sh"):
        shutil.copy2(SCRIPTS / script, scripts / script)
    subprocess.run(["git", "add", "."], cwd=git_repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "scripts"],
        cwd=git_repo,
        check=True,
    )
    (git_repo / "k8s/overlays/dev/infra-outputs.env").write_text("AWS_REGION=eu-west-1\n")
    env = gh_env(tmp_path, ENVIRONMENT="dev", RUN_URL="https://example.invalid/run/1", GITHUB_RUN_ID="1")
    result = run(scripts / "propose-overlay-values.sh", cwd=git_repo, env=env)
    assert result.returncode == 0, result.stderr
    calls = gh_calls(tmp_path)
    assert any("contents/k8s/overlays/dev/infra-outputs.env" in call and " -f sha=" not in call for call in calls)
    assert calls[-1].startswith("pr create --repo owner/name --base main --head infra-outputs/dev/1 --title dev: ")


# -- infra-settings.sh --------------------------------------------------------------------------------


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / ".github" / "scripts").mkdir(parents=True)
    shutil.copy2(INFRA_SETTINGS, root / ".github" / "scripts" / INFRA_SETTINGS.name)
    shutil.copytree(ROOT / "infra" / "env", root / "infra" / "env")
    return root


ROLES = json.dumps({"plan": "arn:aws:iam::1:role/p", "apply": "arn:aws:iam::1:role/a", "push": "arn:aws:iam::1:role/u"})


@pytest.mark.slow  # the script runs jq: Debian package jq
def test_infra_settings_writes_what_run_sh_reads_and_gives_the_region(tmp_path: Path, infra_copy: Path) -> None:
    output = tmp_path / "output"
    env = {
        **os.environ,
        "ENVIRONMENT": "uat",
        "BACKEND_HCL": 'bucket = "b"\nregion = "eu-west-1"',
        "ACCOUNT_TFVARS": 'github_repository = "o/n"',
        "ROLES": ROLES,
        "GITHUB_OUTPUT": str(output),
    }
    result = run(infra_copy / ".github/scripts/infra-settings.sh", "apply", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (infra_copy / "infra/backend.hcl").read_text() == 'bucket = "b"\nregion = "eu-west-1"\n'
    assert (infra_copy / "infra/account.tfvars").read_text() == 'github_repository = "o/n"\n'
    tfvars = (ROOT / "infra/env/uat.tfvars").read_text().splitlines()
    region = next(line.split('"')[1] for line in tfvars if line.startswith("region"))
    assert output.read_text() == f"region={region}\n"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("BACKEND_HCL", "TF_BACKEND_HCL"),
        ("ACCOUNT_TFVARS", "TF_ACCOUNT_TFVARS"),
        pytest.param("ROLES", "AWS_ROLES_PROD", marks=pytest.mark.slow),  # jq reads the roles
    ],
)
def test_infra_settings_names_the_variable_to_set(tmp_path: Path, infra_copy: Path, missing: str, message: str) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "prod",
        "BACKEND_HCL": "x",
        "ACCOUNT_TFVARS": "y",
        "ROLES": ROLES,
        "GITHUB_OUTPUT": str(tmp_path / "o"),
    }
    env[missing] = ""
    result = run(infra_copy / ".github/scripts/infra-settings.sh", "plan", env=env)
    assert result.returncode == 1 and "::error::" in result.stdout and message in result.stdout
    assert not (infra_copy / "infra/backend.hcl").exists()


@pytest.mark.slow  # the script runs jq: Debian package jq
def test_infra_settings_refuses_a_roles_value_without_that_role(tmp_path: Path, infra_copy: Path) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "dev",
        "BACKEND_HCL": "x",
        "ACCOUNT_TFVARS": "y",
        "ROLES": json.dumps({"plan": "arn:aws:iam::1:role/p"}),
        "GITHUB_OUTPUT": str(tmp_path / "o"),
    }
    assert run(infra_copy / ".github/scripts/infra-settings.sh", "plan", env=env).returncode == 0
    refused = run(infra_copy / ".github/scripts/infra-settings.sh", "apply", env=env)
    assert refused.returncode == 1 and "no 'apply' role" in refused.stdout


# -- plan_comment.py ----------------------------------------------------------------------------------


def test_plan_comment_shows_each_plan_or_why_it_is_missing(tmp_path: Path) -> None:
    (tmp_path / "dev.plan.txt").write_text("\x1b[1m  + resource\x1b[0m\n\nPlan: 1 to add, 0 to change, 0 to destroy.\n")
    (tmp_path / "prod.plan.txt").write_text("No changes. Your infrastructure matches the configuration.\n")
    result = run(sys.executable, PLAN_COMMENT, tmp_path, "https://example.invalid/run")
    assert result.returncode == 0, result.stderr
    body = result.stdout
    assert body.startswith("<!-- infra-plan -->\n")
    assert "<b>dev</b>: Plan: 1 to add, 0 to change, 0 to destroy." in body
    assert "\x1b" not in body
    assert "### uat: no plan" in body
    assert "<b>prod</b>: No changes." in body
    assert "(https://example.invalid/run)" in body


def test_plan_comment_fits_githubs_limit_and_keeps_the_summary(tmp_path: Path) -> None:
    for environment in ("dev", "uat", "prod"):
        lines = [f'  + resource "x" "r{i}" {{ ``` }}' for i in range(20_000)]
        lines.append("Plan: 20000 to add, 0 to change, 0 to destroy.")
        (tmp_path / f"{environment}.plan.txt").write_text("\n".join(lines))
    body = run(sys.executable, PLAN_COMMENT, tmp_path, "u").stdout
    assert len(body) <= 65_536
    assert body.count("Plan: 20000 to add") == 6  # the summary line and the kept end of each plan
    assert body.count("(cut: the whole plan is in the run's job summary)") == 3
    assert "````text" in body, "a plan with ``` inside needs a longer fence"
