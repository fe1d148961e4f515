"""The list query shared by the JSON API and the page: status filter, cursor and page size."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.errors import APIError
from app.tasks import MAX_ID, STATUSES, Status


@dataclass(frozen=True)
class ListQuery:
    status: Status | None
    before: int | None
    limit: int


def parse_list_query(
    args: Mapping[str, str], *, default_limit: int, max_limit: int, allowed: Iterable[str]
) -> ListQuery:
    """Read ``status``, ``cursor`` and ``limit``; refuse (400, naming the parameter) anything else."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise APIError(400, f"unknown query parameter(s): {', '.join(unknown)}", field=unknown[0])

    # Present but empty is refused like any other value outside the enum, as the OpenAPI document says.
    status = args.get("status")
    if status is not None and status not in STATUSES:
        raise APIError(400, f"status: must be one of {', '.join(STATUSES)}", field="status")

    before = _integer(args, "cursor", 1, MAX_ID, "the next_cursor of a previous page")
    limit = _integer(args, "limit", 1, max_limit) or default_limit
    return ListQuery(status=status, before=before, limit=limit)


def _integer(args: Mapping[str, str], name: str, low: int, high: int, what: str = "") -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    # isascii() first: str.isdigit() accepts other scripts' digits, which int() would also take.
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        hint = f" ({what})" if what else ""
        raise APIError(400, f"{name}: must be an integer from {low} to {high}{hint}", field=name)
    return int(raw)
