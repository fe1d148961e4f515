"""Where runbooks live: every alert's ``runbook_url`` is built from the repository of infra/cluster.yaml."""

from __future__ import annotations

from pathlib import Path

from observability import cluster
from observability.paths import ROOT

RUNBOOK_DIR = ROOT / "docs" / "runbooks"

# The branch runbooks are read from. After changing it, or the repository in infra/cluster.yaml, run
# `make observability`: every generated runbook_url follows.
DEFAULT_BRANCH = "main"


def repository_url() -> str:
    """The repository on GitHub: infra/cluster.yaml repository.owner_name, the one place it is written.

    A function, not a constant: importing this module reads no file.
    """
    return f"https://github.com/{cluster.load().repository}"


def runbook_base_url() -> str:
    """The GitHub URL of docs/runbooks/ on the default branch."""
    return f"{repository_url()}/blob/{DEFAULT_BRANCH}/{RUNBOOK_DIR.relative_to(ROOT).as_posix()}"


def runbook_url(alert_name: str) -> str:
    """The GitHub URL of ``docs/runbooks/<alert_name>.md``."""
    return f"{runbook_base_url()}/{alert_name}.md"


def runbook_path(alert_name: str) -> Path:
    """The runbook's file in this checkout."""
    return RUNBOOK_DIR / f"{alert_name}.md"
