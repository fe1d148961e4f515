"""Where runbooks live: every alert's ``runbook_url`` is built from the repository of infra/cluster.yaml."""

from __future__ import annotations

from pathlib import Path

from observability import cluster

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK_DIR = ROOT / "docs" / "runbooks"

# The repository on GitHub (infra/cluster.yaml repository.owner_name, the one place it is written) and
# the branch runbooks are read from. After changing either, run `make observability`: every generated
# runbook_url follows.
REPOSITORY_URL = f"https://github.com/{cluster.load().repository}"
DEFAULT_BRANCH = "main"
RUNBOOK_BASE_URL = f"{REPOSITORY_URL}/blob/{DEFAULT_BRANCH}/{RUNBOOK_DIR.relative_to(ROOT).as_posix()}"


def runbook_url(alert_name: str) -> str:
    """The GitHub URL of ``docs/runbooks/<alert_name>.md``."""
    return f"{RUNBOOK_BASE_URL}/{alert_name}.md"


def runbook_path(alert_name: str) -> Path:
    """The runbook's file in this checkout."""
    return RUNBOOK_DIR / f"{alert_name}.md"
