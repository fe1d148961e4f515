"""The JSON API under /api/v1: tasks (list, create, get, update, delete), stats, and its OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import ValidationError

from app import endpoints
from app.contract import Model, TaskCreate, TaskPath, TaskUpdate, list_query, read_query, refusal
from app.errors import APIError, refuse_partial_body
from app.openapi import build_spec
from app.tasks import current_store, register_id_converter

bp = Blueprint("api", __name__, url_prefix=endpoints.API_PREFIX)
bp.record_once(register_id_converter)  # before the routes that use <id:...>


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_body(model: type[Model]) -> Model:
    """The request's JSON body, checked in order: media type (415), size and framing (413, 400), syntax (400),
    ``model`` (422)."""
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
        return model.model_validate(body)
    except ValidationError as exc:
        raise refusal(exc, model, status=422) from None


def task_path(task_id: int) -> TaskPath:
    """The task id of the path; ASCII digits (the route's converter) beyond bigint's range name no task."""
    try:
        return TaskPath(task_id=task_id)
    except ValidationError:
        raise _no_such_task(task_id) from None


def _no_such_task(task_id: int) -> APIError:
    return APIError(404, f"task {task_id} does not exist", field="task_id")


@bp.get("/openapi.json")
def openapi() -> Response:
    settings = current_app.config["SETTINGS"]
    return jsonify(build_spec(max_limit=settings.api_max_limit, default_limit=settings.page_size))


@bp.get("/tasks")
def list_tasks() -> Response:
    settings = current_app.config["SETTINGS"]
    query = read_query(list_query(settings.api_max_limit, settings.page_size))
    page = current_store().list(limit=query.limit, status=query.status_filter, before=query.before)
    return jsonify(items=[task.to_json() for task in page.items], next_cursor=page.next_cursor)


@bp.post("/tasks")
def create_task() -> tuple[Response, int, dict[str, str]]:
    body = read_body(TaskCreate)
    task = current_store().create(body.title, body.status)
    return jsonify(task.to_json()), 201, {"Location": url_for("api.get_task", task_id=task.id)}


@bp.get("/tasks/<id:task_id>")
def get_task(task_id: int) -> Response:
    task = current_store().get(task_path(task_id).task_id)
    if task is None:
        raise _no_such_task(task_id)
    return jsonify(task.to_json())


@bp.patch("/tasks/<id:task_id>")
def update_task(task_id: int) -> Response:
    body = read_body(TaskUpdate)
    task = current_store().update(task_path(task_id).task_id, body.changes())
    if task is None:
        raise _no_such_task(task_id)
    return jsonify(task.to_json())


@bp.delete("/tasks/<id:task_id>")
def delete_task(task_id: int) -> tuple[str, int]:
    if not current_store().delete(task_path(task_id).task_id):
        raise _no_such_task(task_id)
    return "", 204


@bp.get("/stats")
def stats() -> Response:
    return jsonify(current_store().stats())
