"""The OpenAPI 3.1 document of the JSON API, derived from the typed models of :mod:`app.contract`.

Schemas and parameters come from the models that validate the requests; what is written here is
what no model holds: each operation's id, summary, and the sentence that goes with each status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import CoreSchema

from app import endpoints
from app.contract import Error, PageQuery, Stats, Task, TaskCreate, TaskPage, TaskPath, TaskUpdate, list_query

_REF = "#/components/schemas/{model}"


class _Schema(GenerateJsonSchema):
    """pydantic's JSON Schema without a generated ``title`` on every property (the name says it)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_model: type[BaseModel] | None = None
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)


_UNAVAILABLE = (
    "PostgreSQL did not answer. Retry later; a write refused this way may or may not have been applied.",
    Error,
)
_NOT_FOUND = (
    "No task has this id (`field` task_id), or the path matches no route (`field` path): an id is ASCII digits.",
    Error,
)
_BAD_BODY: dict[int, tuple[str, type[BaseModel] | None]] = {
    400: ("The body is not valid JSON.", Error),
    413: ("The body is larger than the configured limit.", Error),
    415: ("The body is not application/json.", Error),
    422: ("The body does not match the schema; `field` names the culprit.", Error),
}
_TASKS = f"{endpoints.API_PREFIX}/tasks"
_TASK = f"{_TASKS}/{{task_id}}"


def operations(query: type[PageQuery]) -> tuple[Operation, ...]:
    """Every documented operation, the list query being ``query`` (its limits are configured)."""
    return (
        Operation(
            "get", _TASKS, "listTasks", "List tasks, newest first.",
            {200: ("One page of tasks.", TaskPage), 400: ("A query parameter is malformed or unknown.", Error),
             503: _UNAVAILABLE},
            query=query,
        ),
        Operation(
            "post", _TASKS, "createTask", "Create a task.",
            {201: ("The task, as stored.", Task), **_BAD_BODY, 503: _UNAVAILABLE},
            body=TaskCreate,
            headers={201: {"Location": {"schema": {"type": "string"}, "description": "The task's URL."}}},
        ),
        Operation(
            "get", _TASK, "getTask", "Get one task.",
            {200: ("The task.", Task), 404: _NOT_FOUND, 503: _UNAVAILABLE},
            path_model=TaskPath,
        ),
        Operation(
            "patch", _TASK, "updateTask", "Change a task's title and/or status.",
            {200: ("The task, as stored.", Task), 404: _NOT_FOUND, **_BAD_BODY, 503: _UNAVAILABLE},
            body=TaskUpdate, path_model=TaskPath,
        ),
        Operation(
            "delete", _TASK, "deleteTask", "Delete a task.",
            {204: ("Deleted.", None), 404: _NOT_FOUND, 503: _UNAVAILABLE},
            path_model=TaskPath,
        ),
        Operation(
            "get", f"{endpoints.API_PREFIX}/stats", "taskStats", "Count tasks by status.",
            {200: ("Counts.", Stats), 503: _UNAVAILABLE},
        ),
    )  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(schema_generator=_Schema)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        parameter: dict[str, Any] = {"name": name, "in": where}
        if where == "path" or name in required:
            parameter["required"] = True
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _operation(op: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    parameters = [
        *(_parameters(op.path_model, "path") if op.path_model else ()),
        *(_parameters(op.query, "query") if op.query else ()),
    ]
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.body)}}}
    responses: dict[str, Any] = {}
    for status, (description, model) in op.responses.items():
        response: dict[str, Any] = {"description": description}
        if model is not None:
            response["content"] = {"application/json": {"schema": _ref(model)}}
        if status in op.headers:
            response["headers"] = op.headers[status]
        responses[str(status)] = response
    document["responses"] = responses
    return document


def build_spec(max_limit: int, default_limit: int) -> dict[str, Any]:
    """The whole OpenAPI document for a service configured with these page sizes."""
    ops = operations(list_query(max_limit, default_limit))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    requests = {op.body for op in ops if op.body is not None}
    responses = {model for op in ops for _, model in op.responses.values() if model is not None}
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(requests, key=lambda m: m.__name__)]
        + [(model, "serialization") for model in sorted(responses, key=lambda m: m.__name__)],
        ref_template=_REF,
        schema_generator=_Schema,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Task board API",
            "version": "1.0.0",
            "description": "A small task board. Refusals are JSON objects with `error`, `detail` and `field`.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
