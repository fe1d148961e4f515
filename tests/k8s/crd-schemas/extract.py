"""Write the openAPIV3Schema of one version of an upstream CRD as <kind>.schema.json, with its source noted.

Run it on the CRD file of the release that is pinned (ANCHORS.md), taken from a checkout of that project:

    git -C argo-helm show argo-rollouts-2.41.0:charts/argo-rollouts/templates/crds/rollout-crd.yaml \\
      | python tests/k8s/crd-schemas/extract.py --version v1alpha1 \\
          --source "argoproj/argo-helm chart argo-rollouts 2.41.0 (Argo Rollouts v1.9.0)" \\
          --url https://github.com/argoproj/argo-helm/blob/argo-rollouts-2.41.0/charts/argo-rollouts/templates/crds/rollout-crd.yaml

Helm template lines (``{{ ... }}``, only ever in a chart CRD's metadata) are dropped before parsing.
``description`` texts are removed to keep the files small; they do not take part in validation. The
schema is otherwise stored as published: tests/k8s/crd.py makes it strict (no unknown fields) when it
validates, exactly as ``kubernetes-validate --strict`` treats the built-in kinds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def _drop_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _drop_descriptions(value)
            for key, value in node.items()
            if not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_drop_descriptions(item) for item in node]
    return node


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the CRD version to extract, e.g. v1alpha1")
    parser.add_argument("--source", required=True, help="project, release and app version of the file")
    parser.add_argument("--url", required=True, help="URL of the CRD file at that release")
    args = parser.parse_args()

    raw = sys.stdin.read()
    text = "\n".join(line for line in raw.splitlines() if "{{" not in line)
    crd = next(doc for doc in yaml.safe_load_all(text) if doc and doc.get("kind") == "CustomResourceDefinition")
    spec = crd["spec"]
    version = next(v for v in spec["versions"] if v["name"] == args.version)
    schema = _drop_descriptions(version["schema"]["openAPIV3Schema"])
    out = {
        "$comment": (
            f"openAPIV3Schema of {spec['names']['kind']} {spec['group']}/{args.version} from {args.source}; "
            f"{args.url} (sha256 {hashlib.sha256(raw.encode()).hexdigest()}); descriptions removed. "
            "Written by tests/k8s/crd-schemas/extract.py."
        ),
        "x-kubernetes-group-version-kind": [
            {"group": spec["group"], "version": args.version, "kind": spec["names"]["kind"]}
        ],
        **schema,
    }
    path = HERE / f"{spec['names']['kind'].lower()}.schema.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(HERE.parent.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
