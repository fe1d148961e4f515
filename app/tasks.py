"""Tasks: the board's one table, its rules, and the parameterised SQL that reads and writes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from flask import current_app
from werkzeug.routing import BaseConverter

from app.db import Cursor, Database

if TYPE_CHECKING:
    from flask.sansio.blueprints import BlueprintSetupState

    from app.metrics import Metrics

Status = Literal["todo", "doing", "done"]
STATUSES: tuple[Status, ...] = ("todo", "doing", "done")
DONE: Status = "done"
TITLE_MAX_LENGTH = 200

# Code points that draw nothing, as inclusive ranges: a title needs at least one character outside
# them. White space, controls (Cc), format characters (Cf: U+200B ZERO WIDTH SPACE, bidi controls,
# tag characters) and the rest of Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt:
# Hangul fillers, variation selectors), as of Unicode 14 (Python 3.11's unicodedata, which
# tests/app/test_api.py checks this against).
INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x0000, 0x0020), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605),
    (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0x115F, 0x1160), (0x1680, 0x1680), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2000, 0x200F),
    (0x2028, 0x202F), (0x205F, 0x206F), (0x3000, 0x3000), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip

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


class TaskIdConverter(BaseConverter):
    """A task id in a URL (``<id:task_id>``): ASCII digits only.

    Werkzeug's ``int`` converter matches ``\\d+``, which in Python's re includes other scripts'
    digits (٣٣٠٦٢, fullwidth ３３０６２) that int() reads too: /tasks/٣٣٠٦٢ was task 33062, and
    DELETE on it deleted that task. Such a path now matches no route.
    """

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: Any) -> str:
        return str(int(value))


def register_id_converter(state: BlueprintSetupState) -> None:
    """Blueprint hook (``record_once``, before its routes): make ``<id:...>`` known to the app's URL map."""
    state.app.url_map.converters["id"] = TaskIdConverter


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
