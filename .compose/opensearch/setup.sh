#!/usr/bin/env bash
# One-shot set-up of compose.yaml's OpenSearch, from observability/opensearch/ (mounted at /setup):
# the index template and retention policy of the log indices, then the saved objects (index pattern,
# searches) imported into OpenSearch Dashboards. Safe to run again: every call overwrites.
set -euo pipefail

OPENSEARCH=${OPENSEARCH:-http://opensearch:9200}
DASHBOARDS=${DASHBOARDS:-http://opensearch-dashboards:5601}

put() {
  curl --fail-with-body --silent --show-error -X PUT "$OPENSEARCH/$1" \
    -H 'Content-Type: application/json' --data-binary "@$2"
  echo
}

put _index_template/taskboard-logs /setup/index-template.json
# Creating a policy that exists answers 409: replace it instead, with its sequence number.
if curl --fail --silent "$OPENSEARCH/_plugins/_ism/policies/taskboard-logs-retention" >/tmp/policy.json; then
  seq_no=$(sed -n 's/.*"_seq_no":\([0-9]*\).*/\1/p' /tmp/policy.json)
  primary_term=$(sed -n 's/.*"_primary_term":\([0-9]*\).*/\1/p' /tmp/policy.json)
  put "_plugins/_ism/policies/taskboard-logs-retention?if_seq_no=$seq_no&if_primary_term=$primary_term" \
    /setup/ism-policy.json
else
  put _plugins/_ism/policies/taskboard-logs-retention /setup/ism-policy.json
fi
curl --fail-with-body --silent --show-error -X POST "$DASHBOARDS/api/saved_objects/_import?overwrite=true" \
  -H 'osd-xsrf: true' --form file=@/setup/saved-objects.ndjson
echo
