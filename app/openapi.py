"""The OpenAPI 3.1 document of the JSON API, and the request-body validation derived from it.

The document is the contract: request bodies are validated against its own schemas, so what it
says and what the service accepts cannot drift apart. Limits come from :mod:`app.tasks`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app import endpoints
from app.tasks import INVISIBLE, MAX_ID, STATUSES, TITLE_MAX_LENGTH

_SPEC_URI = "urn:taskboard:openapi"


def _code_point(cp: int) -> str:
    # \uXXXX reads the same in Python's re (jsonschema, schemathesis) and in ECMA-262; past the BMP
    # the two have no escape in common, so the character itself is written (ECMA-262 reads it as
    # one code point with the "u" flag, which JSON Schema 2020-12 validators use).
    return f"\\u{cp:04X}" if cp <= 0xFFFF else chr(cp)


_INVISIBLE_CLASS = "".join(_code_point(a) if a == b else f"{_code_point(a)}-{_code_point(b)}" for a, b in INVISIBLE)

# Titles are text: at least one visible character, no NUL (which PostgreSQL text cannot hold).
_TITLE = {
    "type": "string",
    "minLength": 1,
    "maxLength": TITLE_MAX_LENGTH,
    "pattern": f"^[^\\u0000]*[^{_INVISIBLE_CLASS}][^\\u0000]*$",
    "description": (
        f"1 to {TITLE_MAX_LENGTH} characters, no NUL, at least one of them visible: not only white space,"
        " control, format (e.g. U+200B ZERO WIDTH SPACE) or other default-ignorable characters."
    ),
}
_STATUS = {"type": "string", "enum": list(STATUSES)}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_UNAVAILABLE = _error_response("PostgreSQL did not answer; nothing was changed. Retry later.")
_NOT_FOUND = _error_response(
    "No task has this id (`field` task_id), or the path matches no route (`field` path): an id is ASCII digits."
)
_BAD_BODY = {
    "400": _error_response("The body is not valid JSON."),
    "413": _error_response("The body is larger than the configured limit."),
    "415": _error_response("The body is not application/json."),
    "422": _error_response("The body does not match the schema; `field` names the culprit."),
}

_TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def build_spec(max_limit: int, default_limit: int) -> dict[str, Any]:
    """The whole OpenAPI document for a service configured with these page sizes."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Task board API",
            "version": "1.0.0",
            "description": "A small task board. Refusals are JSON objects with `error`, `detail` and `field`.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            f"{endpoints.API_PREFIX}/tasks": {
                "get": {
                    "operationId": "listTasks",
                    "summary": "List tasks, newest first.",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": max_limit,
                                "default": default_limit,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "The `next_cursor` of the previous page: list tasks older than it.",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                        },
                        {"name": "status", "in": "query", "schema": _STATUS},
                    ],
                    "responses": {
                        "200": _json("TaskPage", "One page of tasks."),
                        "400": _error_response("A query parameter is malformed or unknown."),
                        "503": _UNAVAILABLE,
                    },
                },
                "post": {
                    "operationId": "createTask",
                    "summary": "Create a task.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskCreate"}}},
                    },
                    "responses": {
                        "201": {
                            **_json("Task", "The task, as stored."),
                            "headers": {"Location": {"schema": {"type": "string"}, "description": "The task's URL."}},
                        },
                        **_BAD_BODY,
                        "503": _UNAVAILABLE,
                    },
                },
            },
            f"{endpoints.API_PREFIX}/tasks/{{task_id}}": {
                "parameters": [_TASK_ID],
                "get": {
                    "operationId": "getTask",
                    "summary": "Get one task.",
                    "responses": {
                        "200": _json("Task", "The task."),
                        "404": _NOT_FOUND,
                        "503": _UNAVAILABLE,
                    },
                },
                "patch": {
                    "operationId": "updateTask",
                    "summary": "Change a task's title and/or status.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskUpdate"}}},
                    },
                    "responses": {
                        "200": _json("Task", "The task, as stored."),
                        "404": _NOT_FOUND,
                        **_BAD_BODY,
                        "503": _UNAVAILABLE,
                    },
                },
                "delete": {
                    "operationId": "deleteTask",
                    "summary": "Delete a task.",
                    "responses": {
                        "204": {"description": "Deleted."},
                        "404": _NOT_FOUND,
                        "503": _UNAVAILABLE,
                    },
                },
            },
            f"{endpoints.API_PREFIX}/stats": {
                "get": {
                    "operationId": "taskStats",
                    "summary": "Count tasks by status.",
                    "responses": {"200": _json("Stats", "Counts."), "503": _UNAVAILABLE},
                }
            },
        },
        "components": {
            "schemas": {
                "Task": {
                    "type": "object",
                    "required": ["id", "title", "status", "created_at", "updated_at"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "integer", "minimum": 1},
                        "title": {"type": "string"},
                        "status": _STATUS,
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "TaskPage": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "additionalProperties": False,
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                        "next_cursor": {"type": ["integer", "null"], "minimum": 1},
                    },
                },
                "TaskCreate": {
                    "type": "object",
                    "required": ["title"],
                    "additionalProperties": False,
                    "properties": {"title": _TITLE, "status": {**_STATUS, "default": "todo"}},
                },
                "TaskUpdate": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": False,
                    "properties": {"title": _TITLE, "status": _STATUS},
                },
                "Stats": {
                    "type": "object",
                    "required": [*STATUSES, "total"],
                    "additionalProperties": False,
                    "properties": {name: {"type": "integer", "minimum": 0} for name in (*STATUSES, "total")},
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {
                        "error": {"type": "string", "description": "A stable machine-readable code."},
                        "detail": {"type": "string", "description": "What was wrong, for a person."},
                        "field": {
                            "type": "string",
                            "description": "What was refused: a body member or query parameter, or body, path,"
                            " method, Content-Type. Absent when the server, not the request, failed (5xx).",
                        },
                    },
                },
            }
        },
    }


class InvalidBody(ValueError):
    """A request body that breaks the schema; ``field`` names the offending member."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@cache
def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    # Limits in the body schemas do not depend on configuration, so one document serves.
    spec = build_spec(max_limit=1, default_limit=1)
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry
    )


def validate_body(schema_name: str, body: Any) -> dict[str, Any]:
    """Return ``body`` if it matches ``components/schemas/<schema_name>``; raise :class:`InvalidBody`."""
    error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(body))
    if error is not None:
        raise _describe(error)
    assert isinstance(body, dict)
    for key, value in body.items():
        # json.loads accepts lone surrogates ("\ud800"), which no database encoding can store.
        if isinstance(value, str) and not _is_encodable(value):
            raise InvalidBody(key, f"{key}: must be valid Unicode text")
    return body


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(error: jsonschema.ValidationError) -> InvalidBody:
    """A one-line message naming the field, in words rather than JSON Schema keywords."""
    path = [str(part) for part in error.absolute_path]
    field = ".".join(path) if path else "body"
    keyword = error.validator
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    expected: Any = error.validator_value
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        unknown = sorted(str(k) for k in error.instance if k not in allowed)
        return InvalidBody(unknown[0], f"unknown field(s): {', '.join(unknown)}")
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = next((str(name) for name in expected if name not in instance), field)
        return InvalidBody(missing, f"{missing}: required")
    if keyword == "minProperties":
        names = ", ".join(schema.get("properties", {}))
        return InvalidBody(field, f"body: must contain at least one of {names}")
    if keyword == "type":
        kinds = " or ".join(expected) if isinstance(expected, list) else str(expected)
        article = "an" if kinds[0] in "aeiou" else "a"
        return InvalidBody(field, f"{field}: must be {article} {kinds}")
    if keyword == "enum":
        return InvalidBody(field, f"{field}: must be one of {', '.join(map(str, expected))}")
    if keyword == "maxLength":
        return InvalidBody(field, f"{field}: must be at most {expected} characters")
    if keyword in {"minLength", "pattern"}:
        return InvalidBody(field, f"{field}: must contain a visible character and no NUL")
    return InvalidBody(field, f"{field}: {error.message}")
