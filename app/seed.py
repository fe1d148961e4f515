"""Sample tasks for a local board: ``python -m app.seed``. Idempotent: a title already present is skipped."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

import psycopg2

from app import logs
from app.config import ConfigError, database_url_from

log = logging.getLogger("taskboard.seed")

SEED_LOCK_KEY = 0x7461736B736565  # "tasksee": serialises concurrent seed runs

SAMPLE_TASKS: tuple[tuple[str, str], ...] = (
    ("Write the runbook for the availability page alert", "done"),
    ("Add a latency panel per route to the service dashboard", "done"),
    ("Load-test the list endpoint at twice last week's peak", "doing"),
    ("Review the canary analysis thresholds", "doing"),
    ("Rotate the database password through Secrets Manager", "todo"),
    ("Drill: stop PostgreSQL and watch the page alert fire", "todo"),
    ("Tune the HPA CPU target from the capacity numbers", "todo"),
    ("Archive log indices older than 30 days", "todo"),
)


def seed(database_url: str) -> int:
    """Insert the sample tasks that are missing; return how many were inserted."""
    inserted = 0
    with psycopg2.connect(database_url, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
        for title, status in SAMPLE_TASKS:
            cur.execute(
                "INSERT INTO tasks (title, status) SELECT %s, %s"
                " WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE title = %s)",
                (title, status, title),
            )
            inserted += cur.rowcount
    conn.close()
    return inserted


def main(env: Mapping[str, str] = os.environ) -> int:
    logs.configure(env.get("LOG_LEVEL", "INFO"))
    try:
        url = database_url_from(env)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    count = seed(url)
    log.info("seeded %d sample task(s)", count, extra={"inserted": count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
