#!/usr/bin/env python3
"""The pull-request comment of infra.yml: each environment's `terraform plan`, or why it is missing.

    plan_comment.py PLANS_DIR RUN_URL > comment.md

PLANS_DIR holds ``<env>.plan.txt`` (what `infra/run.sh -e <env> plan` printed) for each environment
whose plan succeeded. The comment starts with MARKER so the workflow edits its own comment on the next
push instead of adding another. GitHub refuses comments over 65,536 characters: each plan is cut to its
share, keeping its end, where Terraform prints the summary line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "<!-- infra-plan -->"
ENVIRONMENTS = ("dev", "uat", "prod")
COMMENT_LIMIT = 65_536
# Room for the heading, the per-environment wrappers and the notes.
OVERHEAD = 4_000
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SUMMARY = re.compile(r"^(Plan: .*|No changes\..*|Changes to Outputs:.*)$", re.MULTILINE)


def summary(text: str) -> str:
    found = _SUMMARY.findall(text)
    return "; ".join(found) if found else "no summary line (see the plan)"


def fenced(text: str, limit: int) -> str:
    text = _ANSI.sub("", text).strip("\n")
    if len(text) > limit:
        text = "… (cut: the whole plan is in the run's job summary)\n" + text[-limit:]
    # A fence longer than any backtick run inside the text.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def comment(plans: Path, run_url: str) -> str:
    share = (COMMENT_LIMIT - OVERHEAD) // len(ENVIRONMENTS)
    parts = [
        MARKER,
        "## Terraform plan",
        "",
        f"From [this run]({run_url}). Informational: after the merge each environment is planned again on "
        "`main`, and that saved plan is the one its GitHub Environment's reviewers approve and `apply` uses.",
        "",
    ]
    for environment in ENVIRONMENTS:
        path = plans / f"{environment}.plan.txt"
        if not path.is_file():
            parts += [f"### {environment}: no plan", "", "The plan job failed or was skipped: see the run.", ""]
            continue
        text = path.read_text(errors="replace")
        parts += [
            f"<details><summary><b>{environment}</b>: {summary(_ANSI.sub('', text))}</summary>",
            "",
            fenced(text, share),
            "",
            "</details>",
            "",
        ]
    body = "\n".join(parts)
    assert len(body) <= COMMENT_LIMIT, len(body)
    return body


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: plan_comment.py PLANS_DIR RUN_URL", file=sys.stderr)
        return 2
    sys.stdout.write(comment(Path(args[0]), args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
