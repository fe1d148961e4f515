#!/usr/bin/env bash
# One entry point for the AWS environments: the two Terraform stages (platform: infra/, add-ons:
# infra/addons/) in the right order, one workspace per environment, and the clean-up Kubernetes needs
# before a destroy. infra/README.md walks through a first deployment.
#
#   infra/run.sh [-e dev|uat|prod] [-s platform|addons] COMMAND [terraform arguments...]
#
#   bootstrap  once per account: state bucket, GitHub OIDC provider, OpenSearch role; writes backend.hcl
#   init       terraform init (backend.hcl) and select or create the workspace, in both stages
#   plan       terraform plan in both stages (the add-ons plan needs an applied platform)
#   apply      terraform apply: platform, then add-ons; then writes the overlay values (outputs)
#   destroy    delete Kubernetes-made load balancers and volumes, then destroy add-ons, then platform
#   outputs    write k8s/overlays/<env>/infra-outputs.env from the platform's outputs
#
# The environment comes from -e or ENV. -s limits init/plan/apply/destroy to one stage. Everything
# after the command goes to terraform unchanged (e.g. -auto-approve, -target=..., -lock-timeout=5m).
# prod apply and destroy need CONFIRM_PROD=yes, or typing "prod" at the prompt of an interactive run.
# Credentials: the standard AWS chain (AWS_PROFILE, SSO, environment); if infra/credentials.txt exists
# it is used as the shared credentials file (format in infra/README.md).
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$INFRA_DIR/.." && pwd)"
PLATFORM_DIR="$INFRA_DIR"
ADDONS_DIR="$INFRA_DIR/addons"
BOOTSTRAP_DIR="$INFRA_DIR/bootstrap"
BACKEND_FILE="$INFRA_DIR/backend.hcl"
ACCOUNT_FILE="$INFRA_DIR/account.tfvars"
CREDENTIALS_FILE="$INFRA_DIR/credentials.txt"

# How long destroy waits for the load balancer controller to delete what it created, and how often it looks.
LB_WAIT_SECONDS="${LB_WAIT_SECONDS:-900}"
POLL_SECONDS="${POLL_SECONDS:-15}"

die() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

warn() {
  printf 'run.sh: warning: %s\n' "$*" >&2
}

usage() {
  sed -n '5,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

require_cli() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}

tf() {
  local dir="$1"
  shift
  terraform -chdir="$dir" "$@"
}

# The value of `key = "value"` in an HCL file of simple assignments (backend.hcl, *.tfvars).
hcl_value() {
  sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -n 1
}

################################################################################
# Arguments
################################################################################

ENVIRONMENT="${ENV:-}"
STAGE="all"
COMMAND=""
TF_ARGS=()

while (($# > 0)); do
  case "$1" in
    -e | --env)
      (($# >= 2)) || die "-e needs an environment: dev, uat or prod"
      ENVIRONMENT="$2"
      shift 2
      ;;
    -s | --stage)
      (($# >= 2)) || die "-s needs a stage: platform or addons"
      STAGE="$2"
      shift 2
      ;;
    -h | --help)
      usage
      ;;
    *)
      if [[ -z "$COMMAND" ]]; then
        COMMAND="$1"
      else
        TF_ARGS+=("$1")
      fi
      shift
      ;;
  esac
done

case "$COMMAND" in
  bootstrap | init | plan | apply | destroy | outputs) ;;
  "") usage ;;
  *) die "unknown command '$COMMAND': use bootstrap, init, plan, apply, destroy or outputs (see --help)" ;;
esac

case "$STAGE" in
  all) STAGES=(platform addons) ;;
  platform | addons) STAGES=("$STAGE") ;;
  *) die "unknown stage '$STAGE': use platform or addons" ;;
esac

stage_dir() {
  if [[ "$1" == platform ]]; then echo "$PLATFORM_DIR"; else echo "$ADDONS_DIR"; fi
}

# Sets VAR_FILES for a stage: the environment's sizes, and for the platform the account's settings.
stage_var_files() {
  if [[ "$1" == platform ]]; then
    VAR_FILES=("-var-file=$PLATFORM_DIR/env/$ENVIRONMENT.tfvars" "-var-file=$ACCOUNT_FILE")
  else
    VAR_FILES=("-var-file=$ADDONS_DIR/env/$ENVIRONMENT.tfvars")
  fi
}

################################################################################
# Checks that need no tool: environment, workspace and tfvars agree; prod is confirmed
################################################################################

check_environment() {
  case "$ENVIRONMENT" in
    dev | uat | prod) ;;
    "") die "no environment: pass -e dev|uat|prod or set ENV" ;;
    *) die "unknown environment '$ENVIRONMENT': use dev, uat or prod" ;;
  esac

  # TF_WORKSPACE overrides the selected workspace in every terraform command.
  if [[ -n "${TF_WORKSPACE:-}" && "$TF_WORKSPACE" != "$ENVIRONMENT" ]]; then
    die "TF_WORKSPACE is '$TF_WORKSPACE' but the environment is '$ENVIRONMENT': unset TF_WORKSPACE"
  fi

  local stage tfvars declared
  for stage in "${STAGES[@]}"; do
    tfvars="$(stage_dir "$stage")/env/$ENVIRONMENT.tfvars"
    [[ -f "$tfvars" ]] || die "missing ${tfvars#"$REPO_ROOT"/}"
    declared="$(hcl_value environment "$tfvars")"
    [[ "$declared" == "$ENVIRONMENT" ]] ||
      die "${tfvars#"$REPO_ROOT"/} sets environment = \"$declared\" but the workspace is '$ENVIRONMENT': refusing to mix environments"
  done
}

confirm_prod() {
  [[ "$ENVIRONMENT" == prod ]] || return 0
  [[ "${CONFIRM_PROD:-}" == yes ]] && return 0
  if [[ -t 0 ]]; then
    local answer
    read -r -p "run.sh: $COMMAND prod? Type 'prod' to continue: " answer
    [[ "$answer" == prod ]] && return 0
  fi
  die "refusing to $COMMAND prod without confirmation: set CONFIRM_PROD=yes or type 'prod' at the prompt"
}

################################################################################
# Tools and credentials
################################################################################

load_credentials() {
  [[ -f "$CREDENTIALS_FILE" ]] || return 0
  # Group or other permission bits set: ls -l shows them in columns 5-10 (portable, unlike stat).
  local mode
  mode="$(ls -ld "$CREDENTIALS_FILE")"
  if [[ "${mode:4:6}" != "------" ]]; then
    warn "${CREDENTIALS_FILE#"$REPO_ROOT"/} is readable by others: chmod 600 ${CREDENTIALS_FILE#"$REPO_ROOT"/}"
  fi
  export AWS_SHARED_CREDENTIALS_FILE="$CREDENTIALS_FILE"
}

check_credentials() {
  aws sts get-caller-identity --query Account --output text >/dev/null 2>&1 ||
    die "no usable AWS credentials: run 'aws sso login' or set AWS_PROFILE, or write infra/credentials.txt (see infra/README.md)"
}

require_backend() {
  [[ -f "$BACKEND_FILE" ]] || die "missing infra/backend.hcl: run 'infra/run.sh bootstrap' or copy infra/backend.hcl.example"
  TF_VAR_state_bucket="$(hcl_value bucket "$BACKEND_FILE")"
  TF_VAR_state_region="$(hcl_value region "$BACKEND_FILE")"
  [[ -n "$TF_VAR_state_bucket" && -n "$TF_VAR_state_region" ]] || die "infra/backend.hcl must set bucket and region"
  export TF_VAR_state_bucket TF_VAR_state_region
}

require_account_settings() {
  [[ " ${STAGES[*]} " == *" platform "* ]] || return 0
  [[ -f "$ACCOUNT_FILE" ]] || die "missing infra/account.tfvars: copy infra/account.tfvars.example and fill it in"
}

################################################################################
# Stages
################################################################################

select_workspace() {
  local dir="$1" current
  tf "$dir" workspace select -or-create "$ENVIRONMENT"
  current="$(tf "$dir" workspace show)"
  [[ "$current" == "$ENVIRONMENT" ]] || die "workspace in ${dir#"$REPO_ROOT"/} is '$current', not '$ENVIRONMENT'"
}

run_stage() {
  local action="$1" stage="$2" dir
  dir="$(stage_dir "$stage")"
  stage_var_files "$stage"
  select_workspace "$dir"
  tf "$dir" "$action" "${VAR_FILES[@]}" ${TF_ARGS[@]+"${TF_ARGS[@]}"}
}

write_outputs() {
  local target="$REPO_ROOT/k8s/overlays/$ENVIRONMENT/infra-outputs.env"
  select_workspace "$PLATFORM_DIR"
  mkdir -p "$(dirname "$target")"
  tf "$PLATFORM_DIR" output -raw overlay_env >"$target.tmp"
  mv "$target.tmp" "$target"
  printf 'run.sh: wrote %s\n' "${target#"$REPO_ROOT"/}" >&2
}

# Before the add-ons are destroyed: remove Argo CD's Applications, delete every Ingress and
# LoadBalancer Service, and wait until the load balancer controller has deleted the ALBs, target
# groups and security groups it made (they would keep the VPC from being deleted).
delete_kubernetes_load_balancers() {
  local cluster region
  select_workspace "$PLATFORM_DIR"
  if ! cluster="$(tf "$PLATFORM_DIR" output -raw cluster_name 2>/dev/null)" || [[ -z "$cluster" ]]; then
    warn "no cluster in the platform state: nothing to clean up in Kubernetes"
    return 0
  fi
  region="$(tf "$PLATFORM_DIR" output -raw region)"

  require_cli kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/) to destroy an environment"
  KUBECONFIG_FILE="$(mktemp)"
  trap 'rm -f "$KUBECONFIG_FILE"' EXIT
  aws eks update-kubeconfig --name "$cluster" --region "$region" --kubeconfig "$KUBECONFIG_FILE" >/dev/null

  # Deleting the Applications (the root one carries Argo CD's resources finalizer) makes Argo CD delete
  # what it deployed and stop syncing, so nothing re-creates the Ingresses deleted next.
  kube delete applications.argoproj.io --all --all-namespaces --wait=true --timeout=600s ||
    warn "could not delete the Argo CD Applications (Argo CD not installed?)"
  kube delete ingress --all --all-namespaces --wait=true --timeout=300s

  local namespace name
  while read -r namespace name; do
    [[ -n "$name" ]] || continue
    kube delete service --namespace "$namespace" "$name" --wait=true --timeout=300s
  done < <(kube get services --all-namespaces \
    -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}')

  local waited=0 remaining
  while true; do
    remaining="$(aws resourcegroupstaggingapi get-resources --region "$region" \
      --tag-filters "Key=elbv2.k8s.aws/cluster,Values=$cluster" \
      --resource-type-filters elasticloadbalancing:loadbalancer elasticloadbalancing:targetgroup ec2:security-group \
      --query 'ResourceTagMappingList[].ResourceARN' --output text)"
    [[ -z "$remaining" || "$remaining" == None ]] && break
    ((waited < LB_WAIT_SECONDS)) ||
      die "after ${LB_WAIT_SECONDS}s these still exist: $remaining — delete them (EC2 console) and run destroy again"
    printf 'run.sh: waiting for the load balancer controller to delete: %s\n' "$remaining" >&2
    sleep "$POLL_SECONDS"
    waited=$((waited + POLL_SECONDS))
  done
}

# After the add-ons are gone: volumes left by StatefulSets (Prometheus, Alertmanager) are EBS volumes
# the CSI driver deletes only when their claims are deleted.
delete_kubernetes_volumes() {
  [[ -n "${KUBECONFIG_FILE:-}" ]] || return 0
  kube delete persistentvolumeclaims --all --all-namespaces --wait=true --timeout=300s
  kube wait --for=delete persistentvolumes --all --timeout=300s ||
    warn "persistent volumes still being deleted: check for leftover EBS volumes tagged with the cluster"
}

kube() {
  kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"
}

run_bootstrap() {
  local region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  [[ -n "$region" ]] || die "set AWS_REGION to the region the state bucket should live in"
  tf "$BOOTSTRAP_DIR" init
  tf "$BOOTSTRAP_DIR" apply "-var=region=$region" ${TF_ARGS[@]+"${TF_ARGS[@]}"}
  if [[ -f "$BACKEND_FILE" ]]; then
    printf 'run.sh: infra/backend.hcl exists: left unchanged\n' >&2
  else
    tf "$BOOTSTRAP_DIR" output -raw backend_hcl >"$BACKEND_FILE"
    printf 'run.sh: wrote infra/backend.hcl\n' >&2
  fi
}

################################################################################
# Main
################################################################################

main() {
  if [[ "$COMMAND" != bootstrap ]]; then
    check_environment
    if [[ "$COMMAND" == apply || "$COMMAND" == destroy ]]; then
      confirm_prod
    fi
  fi

  require_cli terraform "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install)"
  require_cli aws "install the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
  load_credentials
  check_credentials

  if [[ "$COMMAND" == bootstrap ]]; then
    run_bootstrap
    return 0
  fi

  require_backend
  require_account_settings

  local stage
  case "$COMMAND" in
    init)
      for stage in "${STAGES[@]}"; do
        tf "$(stage_dir "$stage")" init "-backend-config=$BACKEND_FILE" ${TF_ARGS[@]+"${TF_ARGS[@]}"}
        select_workspace "$(stage_dir "$stage")"
      done
      ;;
    plan | apply)
      for stage in "${STAGES[@]}"; do
        run_stage "$COMMAND" "$stage"
      done
      if [[ "$COMMAND" == apply && " ${STAGES[*]} " == *" platform "* ]]; then
        write_outputs
      fi
      ;;
    destroy)
      if [[ " ${STAGES[*]} " == *" addons "* ]]; then
        delete_kubernetes_load_balancers
        run_stage destroy addons
        delete_kubernetes_volumes
      fi
      if [[ " ${STAGES[*]} " == *" platform "* ]]; then
        run_stage destroy platform
      fi
      ;;
    outputs)
      write_outputs
      ;;
  esac
}

main
