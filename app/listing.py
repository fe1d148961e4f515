"""The list query shared by the JSON API and the page: status filter, cursor and page size."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.errors import APIError
from app.tasks import STATUSES, InvalidCursor, Status, decode_cursor


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

    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise APIError(400, f"status: must be one of {', '.join(STATUSES)}", field="status")

    before = None
    if (cursor := args.get("cursor")) is not None:
        try:
            before = decode_cursor(cursor)
        except InvalidCursor:
            raise APIError(400, "cursor: not a cursor this service issued", field="cursor") from None

    limit = default_limit
    if (raw := args.get("limit")) is not None:
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= max_limit:
            raise APIError(400, f"limit: must be an integer from 1 to {max_limit}", field="limit")
        limit = int(raw)
    return ListQuery(status=status, before=before, limit=limit)
