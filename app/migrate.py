"""Bring the database schema up to date: ``python -m app.migrate`` (a PreSync Job in Kubernetes).

Alembic does the work; app/migrations/env.py serialises concurrent runs with an advisory lock, so
two copies started at once apply each revision exactly once, and a second run changes nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config

from app import logs
from app.config import ConfigError, database_url_from, redact_url

log = logging.getLogger("taskboard.migrate")

MIGRATIONS = Path(__file__).parent / "migrations"

# The advisory lock app/migrations/env.py takes: any fixed 64-bit number unique to our migrations.
MIGRATION_LOCK_KEY = 0x7461736B626F61  # "taskboa"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for this package, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an option: config options are interpolated and a password
    # containing "%" would break them.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    """Apply every pending revision (forward only)."""
    command.upgrade(alembic_config(database_url), "head")


def main(env: Mapping[str, str] = os.environ) -> int:
    logs.configure(env.get("LOG_LEVEL", "INFO"))
    try:
        url = database_url_from(env)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    log.info("migrating", extra={"database": redact_url(url)})
    upgrade(url)
    log.info("schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
