#!/usr/bin/env bash
# infra.yml, after an apply changed k8s/overlays/$ENVIRONMENT/infra-outputs.env (the downloaded artifact
# is in the checkout): propose that file, and nothing else, in a pull request. Argo CD applies it on merge.
set -euo pipefail

environment="${ENVIRONMENT:?ENVIRONMENT is not set}"
run_url="${RUN_URL:?RUN_URL is not set}"
body="$(mktemp)"
cat >"$body" <<EOF
The apply of **$environment** in [this run]($run_url) changed the platform output \`overlay_env\`.
This pull request commits what \`infra/run.sh -e $environment outputs\` wrote there, and changes nothing
else; Argo CD applies it when it merges.
EOF
exec "$(dirname "${BASH_SOURCE[0]}")/open-pr.sh" "infra-outputs/$environment/${GITHUB_RUN_ID:?GITHUB_RUN_ID is not set}" \
  "$environment: overlay values from infra" "$body" "k8s/overlays/$environment/infra-outputs.env"
