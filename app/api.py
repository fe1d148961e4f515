"""The JSON API under /api/v1: tasks (list, create, get, update, delete), stats, and its OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from app import endpoints
from app.errors import APIError, refuse_partial_body
from app.listing import parse_list_query
from app.openapi import InvalidBody, build_spec, validate_body
from app.tasks import current_store, register_id_converter

bp = Blueprint("api", __name__, url_prefix=endpoints.API_PREFIX)
bp.record_once(register_id_converter)  # before the routes that use <id:...>


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_body(schema_name: str) -> dict[str, Any]:
    """The request's JSON body, checked in order: media type (415), size and framing (413, 400), syntax (400),
    schema (422)."""
    if not request.is_json:
        got = request.mimetype or "nothing"
        raise APIError(415, f"Content-Type: must be application/json, got {got}", field="Content-Type")
    raw = request.get_data(cache=True)  # raises 413 when Content-Length declares more than MAX_CONTENT_LENGTH
    refuse_partial_body()
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise APIError(400, f"body: not valid JSON ({exc})", error="invalid_json", field="body") from None
    try:
        return validate_body(schema_name, body)
    except InvalidBody as exc:
        raise APIError(422, exc.detail, field=exc.field) from None


@bp.get("/openapi.json")
def openapi() -> Response:
    settings = current_app.config["SETTINGS"]
    return jsonify(build_spec(max_limit=settings.api_max_limit, default_limit=settings.page_size))


@bp.get("/tasks")
def list_tasks() -> Response:
    settings = current_app.config["SETTINGS"]
    query = parse_list_query(
        request.args,
        default_limit=settings.page_size,
        max_limit=settings.api_max_limit,
        allowed=("status", "cursor", "limit"),
    )
    page = current_store().list(limit=query.limit, status=query.status, before=query.before)
    return jsonify(items=[task.to_json() for task in page.items], next_cursor=page.next_cursor)


@bp.post("/tasks")
def create_task() -> tuple[Response, int, dict[str, str]]:
    body = read_body("TaskCreate")
    task = current_store().create(body["title"], body.get("status", "todo"))
    return jsonify(task.to_json()), 201, {"Location": url_for("api.get_task", task_id=task.id)}


@bp.get("/tasks/<id:task_id>")
def get_task(task_id: int) -> Response:
    task = current_store().get(task_id)
    if task is None:
        raise APIError(404, f"task {task_id} does not exist", field="task_id")
    return jsonify(task.to_json())


@bp.patch("/tasks/<id:task_id>")
def update_task(task_id: int) -> Response:
    body = read_body("TaskUpdate")
    task = current_store().update(task_id, body)
    if task is None:
        raise APIError(404, f"task {task_id} does not exist", field="task_id")
    return jsonify(task.to_json())


@bp.delete("/tasks/<id:task_id>")
def delete_task(task_id: int) -> tuple[str, int]:
    if not current_store().delete(task_id):
        raise APIError(404, f"task {task_id} does not exist", field="task_id")
    return "", 204


@bp.get("/stats")
def stats() -> Response:
    return jsonify(current_store().stats())
