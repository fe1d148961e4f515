"""Tasks: the board's one table, its rules, and the parameterised SQL that reads and writes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from flask import current_app

from app.db import Cursor, Database

if TYPE_CHECKING:
    from app.metrics import Metrics

Status = Literal["todo", "doing", "done"]
STATUSES: tuple[Status, ...] = ("todo", "doing", "done")
DONE: Status = "done"
TITLE_MAX_LENGTH = 200

# The named database operations (the `operation` label of the query metrics).
LIST, GET, CREATE, UPDATE, DELETE, STATS = (
    "list_tasks",
    "get_task",
    "create_task",
    "update_task",
    "delete_task",
    "task_stats",
)
OPERATIONS = (LIST, GET, CREATE, UPDATE, DELETE, STATS)

# PostgreSQL bigint: a larger id cannot exist, and must not reach the driver as a parameter.
MAX_ID = 2**63 - 1

# Every statement the store runs; parameters are always bound by the driver, never formatted in.
_COLUMNS = "id, title, status, created_at, updated_at"
_LIST = (
    f"SELECT {_COLUMNS} FROM tasks"  # noqa: S608 - a constant column list, no input
    " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
    " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
    " ORDER BY id DESC LIMIT %(limit)s"
)
_GET = f"SELECT {_COLUMNS} FROM tasks WHERE id = %s"  # noqa: S608
_INSERT = f"INSERT INTO tasks (title, status) VALUES (%s, %s) RETURNING {_COLUMNS}"  # noqa: S608
_LOCK = "SELECT status FROM tasks WHERE id = %s FOR UPDATE"
_UPDATE = (
    "UPDATE tasks SET title = COALESCE(%(title)s, title),"  # noqa: S608
    " status = COALESCE(%(status)s, status), updated_at = now()"
    f" WHERE id = %(id)s RETURNING {_COLUMNS}"
)
_DELETE = "DELETE FROM tasks WHERE id = %s"
_STATS = "SELECT status, count(*) FROM tasks GROUP BY status"


@dataclass(frozen=True)
class Task:
    id: int
    title: str
    status: Status
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Page:
    """One page of tasks, newest first, and the cursor of the next (older) page if there is one.

    The cursor is the id of the page's last task ("older than this"), like Stripe's
    ``starting_after``: an integer the OpenAPI document can describe exactly, stable under inserts.
    """

    items: list[Task]
    next_cursor: int | None


def _task(row: tuple[Any, ...]) -> Task:
    return Task(id=row[0], title=row[1], status=row[2], created_at=row[3], updated_at=row[4])


class TaskStore:
    """Reads and writes tasks; every method is one committed transaction.

    The business counters (tasks created, tasks completed) are counted here, after the commit, so
    every caller counts the same way and nothing unacknowledged is counted.
    """

    def __init__(self, db: Database, metrics: Metrics | None = None) -> None:
        self._db = db
        self._metrics = metrics

    def list(self, *, limit: int, status: Status | None = None, before: int | None = None) -> Page:
        def work(cur: Cursor) -> list[Task]:
            # One page plus one row tells whether an older page exists.
            cur.execute(_LIST, {"status": status, "before": before, "limit": limit + 1})
            return [_task(row) for row in cur.fetchall()]

        rows = self._db.run(LIST, work, idempotent=True, one_statement=True)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items=items, next_cursor=items[-1].id if more and items else None)

    def get(self, task_id: int) -> Task | None:
        if not 1 <= task_id <= MAX_ID:
            return None

        def work(cur: Cursor) -> Task | None:
            cur.execute(_GET, (task_id,))
            row = cur.fetchone()
            return _task(row) if row else None

        return self._db.run(GET, work, idempotent=True, one_statement=True)

    def create(self, title: str, status: Status = "todo") -> Task:
        def work(cur: Cursor) -> Task:
            cur.execute(_INSERT, (title, status))
            row = cur.fetchone()
            assert row is not None
            return _task(row)

        task = self._db.run(CREATE, work, one_statement=True)
        if self._metrics is not None:
            self._metrics.tasks_created.inc()
            if task.status == DONE:
                self._metrics.tasks_completed.inc()
        return task

    def update(self, task_id: int, changes: dict[str, Any]) -> Task | None:
        """Apply ``changes`` (title and/or status); return the task as stored, or None if it does not exist."""
        if not 1 <= task_id <= MAX_ID:
            return None

        def work(cur: Cursor) -> tuple[Task, Status] | None:
            cur.execute(_LOCK, (task_id,))
            before = cur.fetchone()
            if before is None:
                return None
            cur.execute(_UPDATE, {"title": changes.get("title"), "status": changes.get("status"), "id": task_id})
            row = cur.fetchone()
            assert row is not None
            return _task(row), before[0]

        result = self._db.run(UPDATE, work)
        if result is None:
            return None
        task, previous = result
        if self._metrics is not None and task.status == DONE and previous != DONE:
            self._metrics.tasks_completed.inc()
        return task

    def delete(self, task_id: int) -> bool:
        if not 1 <= task_id <= MAX_ID:
            return False

        def work(cur: Cursor) -> bool:
            cur.execute(_DELETE, (task_id,))
            return bool(cur.rowcount)

        return self._db.run(DELETE, work, one_statement=True)

    def stats(self) -> dict[str, int]:
        """Task counts by status, every status present, plus ``total``."""

        def work(cur: Cursor) -> dict[str, int]:
            cur.execute(_STATS)
            return dict(cur.fetchall())

        counts = self._db.run(STATS, work, idempotent=True, one_statement=True)
        result: dict[str, int] = {status: int(counts.get(status, 0)) for status in STATUSES}
        result["total"] = sum(result.values())
        return result


def current_store() -> TaskStore:
    """The store of the application handling the current request."""
    store: TaskStore = current_app.extensions["tasks"]
    return store
