"""The HTML page: the board, newest first, with a status filter, pages, stats and a form. No JavaScript."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from app.errors import APIError, refuse_partial_body
from app.listing import ListQuery, parse_list_query
from app.openapi import InvalidBody, validate_body
from app.tasks import STATUSES, current_store, register_id_converter

bp = Blueprint("web", __name__)
bp.record_once(register_id_converter)  # before the routes that use <id:...>


def _query() -> ListQuery:
    size = current_app.config["SETTINGS"].page_size
    return parse_list_query(request.args, default_limit=size, max_limit=size, allowed=("status", "cursor"))


def _render(query: ListQuery, *, status: int = 200, error: str | None = None, title: str = "") -> Response:
    store = current_store()
    page = store.list(limit=query.limit, status=query.status, before=query.before)
    body = render_template(
        "index.html",
        page=page,
        stats=store.stats(),
        statuses=STATUSES,
        current_status=query.status,
        paged=query.before is not None,
        error=error,
        title=title,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/")
def index() -> Response:
    return _render(_query())


@bp.post("/tasks")
def create_task() -> Response:
    title = request.form.get("title", "")
    refuse_partial_body()
    try:
        validate_body("TaskCreate", {"title": title})
    except InvalidBody as exc:
        size = current_app.config["SETTINGS"].page_size
        return _render(ListQuery(None, None, size), status=422, error=exc.detail, title=title)
    current_store().create(title)
    return redirect(url_for("web.index"), code=303)  # type: ignore[return-value]


@bp.post("/tasks/<id:task_id>/status")
def set_status(task_id: int) -> Response:
    status = request.form.get("status", "")
    refuse_partial_body()
    try:
        validate_body("TaskUpdate", {"status": status})
    except InvalidBody as exc:
        raise APIError(422, exc.detail, field=exc.field) from None
    if current_store().update(task_id, {"status": status}) is None:
        raise APIError(404, f"task {task_id} does not exist", field="task_id")
    return redirect(url_for("web.index"), code=303)  # type: ignore[return-value]
