"""The JSON API's contract as typed models: request bodies, query and path parameters, and responses.

Requests are validated by these models and the OpenAPI document (:mod:`app.openapi`) is derived from
them, so what the document says and what the service accepts cannot drift apart. A refusal names the
member or parameter at fault, in words rather than pydantic's.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, TypeVar

from flask import request
from pydantic import (
    MISSING,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.errors import APIError
from app.tasks import INVISIBLE, MAX_ID, STATUSES, TITLE_MAX_LENGTH, Status


def _code_point(cp: int) -> str:
    # \uXXXX reads the same in pydantic's regex engine (Rust's regex crate), in Python's re
    # (schemathesis) and in ECMA-262; past the BMP the three have no escape in common, so the
    # character itself is written (ECMA-262 reads it as one code point with the "u" flag, which
    # JSON Schema 2020-12 validators use).
    return f"\\u{cp:04X}" if cp <= 0xFFFF else chr(cp)


_INVISIBLE_CLASS = "".join(_code_point(a) if a == b else f"{_code_point(a)}-{_code_point(b)}" for a, b in INVISIBLE)

# Titles are text: at least one visible character, no NUL (which PostgreSQL text cannot hold).
Title = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=TITLE_MAX_LENGTH, pattern=f"^[^\\u0000]*[^{_INVISIBLE_CLASS}][^\\u0000]*$"
    ),
    Field(
        description=f"1 to {TITLE_MAX_LENGTH} characters, no NUL, at least one of them visible: not only white"
        " space, control, format (e.g. U+200B ZERO WIDTH SPACE) or other default-ignorable characters."
    ),
]


def _ascii_digits(value: object) -> object:
    # A query parameter is text; pydantic's lax int would also take "+5", " 5", "5.0" and "5_0".
    # isascii() first: str.isdigit() accepts other scripts' digits, which int() would also read.
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise PydanticCustomError("int_parsing", "not ASCII digits")
        return int(value)
    return value


Digits = BeforeValidator(_ascii_digits)


# -- request bodies ------------------------------------------------------------------------


class _Body(BaseModel):
    # strict: JSON types as sent (no "1" for 1, no 1 for "1"); forbid: an unknown member is refused.
    model_config = ConfigDict(extra="forbid", strict=True)


class TaskCreate(_Body):
    title: Title
    status: Status = "todo"


class TaskUpdate(_Body):
    """A change to a task: its title, its status, or both; a member left out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: Title | MISSING = MISSING
    status: Status | MISSING = MISSING

    @model_validator(mode="after")
    def _changes_something(self) -> TaskUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError("min_properties", "must contain at least one member")
        return self

    def changes(self) -> dict[str, Any]:
        """The members that were sent, by name."""
        return self.model_dump(exclude_unset=True)


# -- path and query parameters ---------------------------------------------------------------


class TaskPath(BaseModel):
    model_config = ConfigDict(strict=True)

    task_id: Annotated[int, Field(ge=1, le=MAX_ID)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# Digits after the bounds (it still runs first): placed before them, it hides them from the JSON schema.
Cursor = Annotated[
    int, Field(ge=1, le=MAX_ID, description="The `next_cursor` of the previous page: list tasks older than it."), Digits
]


class PageQuery(_Query):
    """The page's filter and cursor (its page size is the configured PAGE_SIZE, not a parameter)."""

    status: Status | MISSING = MISSING
    cursor: Cursor | MISSING = MISSING

    @property
    def status_filter(self) -> Status | None:
        return None if self.status is MISSING else self.status

    @property
    def before(self) -> int | None:
        return None if self.cursor is MISSING else self.cursor


class ListQuery(PageQuery):
    """The API's list query: the page's, and ``limit`` up to the configured API_MAX_LIMIT."""

    limit: int


@cache
def list_query(max_limit: int, default_limit: int) -> type[ListQuery]:
    """The list query of a service configured with these page sizes: the one place its bounds are set."""
    limit = Annotated[int, Field(ge=1, le=max_limit), Digits]
    return create_model("ListQuery", __base__=ListQuery, __module__=__name__, limit=(limit, default_limit))


# -- responses (documented; the handlers build them from app.tasks) -----------------------------


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Task(_Closed):
    id: Annotated[int, Field(ge=1)]
    title: str
    status: Status
    created_at: datetime
    updated_at: datetime


class TaskPage(_Closed):
    items: list[Task]
    next_cursor: Annotated[int, Field(ge=1)] | None


Stats = create_model(
    "Stats",
    __base__=_Closed,
    __module__=__name__,
    **{name: (Annotated[int, Field(ge=0)], ...) for name in (*STATUSES, "total")},  # type: ignore[call-overload]
)


class Error(BaseModel):
    error: str = Field(description="A stable machine-readable code.")
    detail: str = Field(description="What was wrong, for a person.")
    field: str | MISSING = Field(
        default=MISSING,
        description="What was refused: a body member or query parameter, or body, path, method, Content-Type."
        " Absent when the server, not the request, failed (5xx).",
    )


# -- reading a request into a model ------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)


def read_query(model: type[Model]) -> Model:
    """The query string as ``model``; a parameter out of its bounds, or unknown, is a 400 naming it."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise refusal(exc, model, status=400, where="query") from None


# -- refusals --------------------------------------------------------------------------------


def refusal(exc: ValidationError, model: type[BaseModel], *, status: int, where: str = "body") -> APIError:
    """``exc`` as one refusal naming its culprit: unknown members first, then the first error."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        what = "field(s)" if where == "body" else "query parameter(s)"
        return APIError(status, f"unknown {what}: {', '.join(unknown)}", field=unknown[0])
    error = errors[0]
    name = ".".join(str(part) for part in error["loc"]) or where
    return APIError(status, f"{name}: {_expected(model, name, error['type'])}", field=name)


def _expected(model: type[BaseModel], name: str, kind: str) -> str:
    """What ``name`` must be, in words, from the model's own JSON schema."""
    if kind == "missing":
        return "required"
    if kind == "min_properties":
        return f"must contain at least one of {', '.join(model.model_fields)}"
    if kind == "model_type":
        return "must be an object"
    if kind == "string_unicode":
        return "must be valid Unicode text"
    schema = _property_schemas(model).get(name, {})
    if "enum" in schema:
        return f"must be one of {', '.join(map(str, schema['enum']))}"
    if schema.get("type") == "integer":
        hint = f" ({schema['description']})" if "description" in schema else ""
        return f"must be an integer from {schema.get('minimum')} to {schema.get('maximum')}{hint}"
    if schema.get("type") == "string":
        if kind == "string_too_long":
            return f"must be at most {schema['maxLength']} characters"
        if kind in {"string_too_short", "string_pattern_mismatch"}:
            return "must contain a visible character and no NUL"
        return "must be a string"
    return "is not valid"


@cache
def _property_schemas(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """Each field's JSON schema, a ``MISSING`` alternative or ``null`` flattened away."""
    flat: dict[str, dict[str, Any]] = {}
    for name, schema in model.model_json_schema()["properties"].items():
        variants = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        flat[name] = variants[0] if len(variants) == 1 else schema
    return flat
