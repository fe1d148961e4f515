#!/usr/bin/env bash
# What infra/run.sh needs in a workflow, from the repository variables (.github/README.md): writes
# infra/backend.hcl and infra/account.tfvars (both ignored by git), checks that the environment's role for
# PURPOSE is set, and gives the environment's region (infra/env/<env>.tfvars) as the step output "region".
#
#   ENVIRONMENT=dev BACKEND_HCL=... ACCOUNT_TFVARS=... ROLES='{"plan": "arn:...", ...}' \
#     .github/scripts/infra-settings.sh plan|apply
set -euo pipefail

die() {
  printf '::error::%s\n' "$*"
  exit 1
}

purpose="${1:?usage: infra-settings.sh plan|apply}"
environment="${ENVIRONMENT:?ENVIRONMENT is not set}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tfvars="$root/infra/env/$environment.tfvars"

[[ -f "$tfvars" ]] || die "no infra/env/$environment.tfvars: environment '$environment' does not exist"
[[ -n "${BACKEND_HCL:-}" ]] || die "set the repository variable TF_BACKEND_HCL to the contents of infra/backend.hcl"
[[ -n "${ACCOUNT_TFVARS:-}" ]] || die "set the repository variable TF_ACCOUNT_TFVARS to the contents of infra/account.tfvars"
role="$(jq -r --arg purpose "$purpose" '.[$purpose] // empty | strings' <<<"${ROLES:-null}" 2>/dev/null || true)"
[[ "$role" == arn:* ]] ||
  die "set the repository variable AWS_ROLES_${environment^^} to \`terraform -chdir=infra output -json github_role_arns\` of $environment (no '$purpose' role in it)"

printf '%s\n' "$BACKEND_HCL" >"$root/infra/backend.hcl"
printf '%s\n' "$ACCOUNT_TFVARS" >"$root/infra/account.tfvars"

# Same reading as run.sh's hcl_value: `region = "..."`.
region="$(sed -n 's/^[[:space:]]*region[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$tfvars" | head -n 1)"
[[ -n "$region" ]] || die "infra/env/$environment.tfvars sets no region"
echo "region=$region" >>"${GITHUB_OUTPUT:-/dev/stdout}"
