#!/bin/sh
# Applies observability/opensearch/ to the OpenSearch domain, from inside the VPC (the Kubernetes Job in
# logging.tf runs it; Terraform never needs network reach to the domain). Idempotent: safe on every apply.
#
#   *.json with a top-level "policy"          -> ISM policy        PUT _plugins/_ism/policies/<name>
#   *.json with "index_patterns" (otherwise)  -> index template    PUT _index_template/<name>
#   *.ndjson                                   -> Dashboards saved objects, imported with overwrite
# <name> is the one the file states (`PUT _index_template/<name>` in its description), else the file
# name. Then maps, as backend roles (fine-grained access control), the Fluent Bit role (write) and the
# Grafana role (read) to roles limited to LOG_INDEX_PATTERN, and the Jaeger role to TRACE_INDEX_PATTERN.
#
# Credentials: the IRSA web identity token is exchanged for the FGAC master role's keys with
# sts:AssumeRoleWithWebIdentity (an unsigned call), and every request is SigV4-signed by curl.
set -eu

: "${OPENSEARCH_ENDPOINT:?host of the domain, without scheme}"
: "${AWS_REGION:?region of the domain}"
: "${AWS_ROLE_ARN:?set by the EKS pod identity webhook (IRSA)}"
: "${AWS_WEB_IDENTITY_TOKEN_FILE:?set by the EKS pod identity webhook (IRSA)}"
: "${FLUENT_BIT_ROLE_ARN:?role Fluent Bit writes with}"
: "${GRAFANA_ROLE_ARN:?role Grafana reads with}"
: "${JAEGER_ROLE_ARN:?role Jaeger stores traces with}"
: "${LOG_INDEX_PATTERN:?indices Fluent Bit writes, e.g. taskboard-logs-*}"
: "${TRACE_INDEX_PATTERN:?indices Jaeger writes, e.g. jaeger-*}"
FILES_DIR="${FILES_DIR:-/config/opensearch}"
WORK_DIR="${WORK_DIR:-/tmp}"
STS_ENDPOINT="${STS_ENDPOINT:-https://sts.${AWS_REGION}.amazonaws.com/}"

log() { printf 'opensearch-setup: %s\n' "$*" >&2; }

xml_value() { sed -n "s:.*<$1>\\(.*\\)</$1>.*:\\1:p" "$2"; }

assume_role() {
  curl --silent --show-error --fail --max-time 30 -o "$WORK_DIR/sts.xml" \
    --data-urlencode "Action=AssumeRoleWithWebIdentity" \
    --data-urlencode "Version=2011-06-15" \
    --data-urlencode "RoleArn=$AWS_ROLE_ARN" \
    --data-urlencode "RoleSessionName=opensearch-setup" \
    --data-urlencode "DurationSeconds=3600" \
    --data-urlencode "WebIdentityToken@$AWS_WEB_IDENTITY_TOKEN_FILE" \
    "$STS_ENDPOINT"
  ACCESS_KEY_ID="$(xml_value AccessKeyId "$WORK_DIR/sts.xml")"
  SECRET_ACCESS_KEY="$(xml_value SecretAccessKey "$WORK_DIR/sts.xml")"
  SESSION_TOKEN="$(xml_value SessionToken "$WORK_DIR/sts.xml")"
  rm -f "$WORK_DIR/sts.xml"
  if [ -z "$ACCESS_KEY_ID" ] || [ -z "$SECRET_ACCESS_KEY" ] || [ -z "$SESSION_TOKEN" ]; then
    log "sts:AssumeRoleWithWebIdentity returned no credentials for $AWS_ROLE_ARN"
    exit 1
  fi
}

# opensearch METHOD PATH [curl arguments...]: a signed request; the body is written to $WORK_DIR/response.
opensearch() {
  method="$1"
  path="$2"
  shift 2
  curl --silent --show-error --fail-with-body --max-time 60 -o "$WORK_DIR/response" \
    --aws-sigv4 "aws:amz:$AWS_REGION:es" \
    --user "$ACCESS_KEY_ID:$SECRET_ACCESS_KEY" \
    -H "x-amz-security-token: $SESSION_TOKEN" \
    -X "$method" "$@" "https://$OPENSEARCH_ENDPOINT/$path"
}

put_json() {
  log "PUT $1"
  opensearch PUT "$1" -H "Content-Type: application/json" --data-binary "@$2"
}

# ISM refuses a plain PUT over an existing policy: update it with its sequence number and primary term.
put_ism_policy() {
  path="_plugins/_ism/policies/$1"
  if opensearch GET "$path" 2>/dev/null; then
    seq_no="$(tr -d ' \n' <"$WORK_DIR/response" | sed -n 's/.*"_seq_no":\([0-9]*\).*/\1/p')"
    primary_term="$(tr -d ' \n' <"$WORK_DIR/response" | sed -n 's/.*"_primary_term":\([0-9]*\).*/\1/p')"
    put_json "$path?if_seq_no=$seq_no&if_primary_term=$primary_term" "$2"
  else
    put_json "$path" "$2"
  fi
}

# Saved objects go through the Dashboards API as a multipart upload. The body is built in a file so that
# curl can hash it for the signature (it cannot sign a streamed -F form).
import_saved_objects() {
  boundary="opensearch-setup-boundary"
  body="$WORK_DIR/saved-objects.multipart"
  {
    printf -- '--%s\r\n' "$boundary"
    printf 'Content-Disposition: form-data; name="file"; filename="%s"\r\n' "$(basename "$1")"
    printf 'Content-Type: application/ndjson\r\n\r\n'
    cat "$1"
    printf '\r\n--%s--\r\n' "$boundary"
  } >"$body"
  log "POST saved objects from $(basename "$1")"
  opensearch POST "_dashboards/api/saved_objects/_import?overwrite=true" \
    -H "osd-xsrf: true" -H "securitytenant: global" \
    -H "Content-Type: multipart/form-data; boundary=$boundary" --data-binary "@$body"
  rm -f "$body"
}

# write_role NAME CLUSTER_PERMISSIONS INDEX_PATTERN INDEX_ACTIONS BACKEND_ROLE
write_role() {
  cat >"$WORK_DIR/role.json" <<JSON
{"cluster_permissions": $2, "index_permissions": [{"index_patterns": ["$3"], "allowed_actions": $4}]}
JSON
  put_json "_plugins/_security/api/roles/$1" "$WORK_DIR/role.json"
  printf '{"backend_roles": ["%s"]}\n' "$5" >"$WORK_DIR/mapping.json"
  put_json "_plugins/_security/api/rolesmapping/$1" "$WORK_DIR/mapping.json"
  rm -f "$WORK_DIR/role.json" "$WORK_DIR/mapping.json"
}

# The name a file states for itself ("PUT <api>/<name>" in its description), else its file name.
stated_name() {
  stated="$(grep -o "PUT $1/[A-Za-z0-9_.-]*" "$2" | head -n 1 | sed 's:.*/::')"
  if [ -n "$stated" ]; then echo "$stated"; else basename "$2" .json; fi
}

assume_role

found=0
for file in "$FILES_DIR"/*.json; do
  [ -e "$file" ] || continue
  if grep -q '"policy"[[:space:]]*:' "$file"; then
    put_ism_policy "$(stated_name _plugins/_ism/policies "$file")" "$file"
  elif grep -q '"index_patterns"[[:space:]]*:' "$file"; then
    put_json "_index_template/$(stated_name _index_template "$file")" "$file"
  else
    log "skipping $(basename "$file"): neither an ISM policy nor an index template"
    continue
  fi
  found=$((found + 1))
done
if [ "$found" -eq 0 ]; then
  log "no index template or ISM policy in $FILES_DIR"
  exit 1
fi

for file in "$FILES_DIR"/*.ndjson; do
  [ -e "$file" ] || continue
  import_saved_objects "$file"
done

write_role taskboard_log_writer \
  '["cluster_monitor", "cluster_composite_ops", "indices:admin/template/get"]' \
  "$LOG_INDEX_PATTERN" '["crud", "create_index", "indices:admin/mapping/put"]' \
  "$FLUENT_BIT_ROLE_ARN"
write_role taskboard_log_reader \
  '["cluster_composite_ops_ro", "cluster_monitor"]' \
  "$LOG_INDEX_PATTERN" '["read", "indices:admin/mappings/get", "indices:admin/resolve/index", "indices:monitor/settings/get"]' \
  "$GRAFANA_ROLE_ARN"
# Jaeger creates its own index templates and daily indices, and reads them back for the UI.
write_role taskboard_trace_writer \
  '["cluster_monitor", "cluster_composite_ops", "cluster_manage_index_templates"]' \
  "$TRACE_INDEX_PATTERN" '["indices_all"]' \
  "$JAEGER_ROLE_ARN"

log "done"
