"""The HTML page: the board, newest first, with a status filter, pages, stats and a form. No JavaScript."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from pydantic import ValidationError

from app.contract import PageQuery, TaskCreate, TaskUpdate, read_query, refusal
from app.errors import APIError, refuse_partial_body
from app.tasks import STATUSES, current_store, register_id_converter

bp = Blueprint("web", __name__)
bp.record_once(register_id_converter)  # before the routes that use <id:...>


def _render(query: PageQuery, *, status: int = 200, error: str | None = None, title: str = "") -> Response:
    store = current_store()
    size = current_app.config["SETTINGS"].page_size
    page = store.list(limit=size, status=query.status_filter, before=query.before)
    body = render_template(
        "index.html",
        page=page,
        stats=store.stats(),
        statuses=STATUSES,
        current_status=query.status_filter,
        paged=query.before is not None,
        error=error,
        title=title,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/")
def index() -> Response:
    return _render(read_query(PageQuery))


@bp.post("/tasks")
def create_task() -> Response:
    title = request.form.get("title", "")
    refuse_partial_body()
    try:
        TaskCreate(title=title)
    except ValidationError as exc:
        return _render(PageQuery(), status=422, error=refusal(exc, TaskCreate, status=422).detail, title=title)
    current_store().create(title)
    return redirect(url_for("web.index"), code=303)  # type: ignore[return-value]


@bp.post("/tasks/<id:task_id>/status")
def set_status(task_id: int) -> Response:
    status = request.form.get("status", "")
    refuse_partial_body()
    try:
        update = TaskUpdate.model_validate({"status": status})
    except ValidationError as exc:
        raise refusal(exc, TaskUpdate, status=422) from None
    if current_store().update(task_id, update.changes()) is None:
        raise APIError(404, f"task {task_id} does not exist", field="task_id")
    return redirect(url_for("web.index"), code=303)  # type: ignore[return-value]
