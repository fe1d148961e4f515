"""The JSON API against a real PostgreSQL: every route, pagination edges, and every refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import endpoints
from app.tasks import MAX_ID, TITLE_MAX_LENGTH
from tests.conftest import execute, table_snapshot

API = endpoints.API_PREFIX


def create(client: FlaskClient, title: str, status: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title}
    if status is not None:
        body["status"] = status
    response = client.post(f"{API}/tasks", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    result: dict[str, Any] = response.get_json()
    return result


def test_create_returns_the_stored_task_with_its_location(client: FlaskClient, empty_database: str) -> None:
    response = client.post(f"{API}/tasks", json={"title": "Write tests"})

    assert response.status_code == 201
    task = response.get_json()
    assert task["title"] == "Write tests"
    assert task["status"] == "todo"
    assert set(task) == {"id", "title", "status", "created_at", "updated_at"}
    assert response.headers["Location"] == f"{API}/tasks/{task['id']}"
    # Acknowledged means committed: another connection sees it.
    assert execute(empty_database, "SELECT title, status FROM tasks WHERE id = %s", (task["id"],)) == [
        ("Write tests", "todo")
    ]


def test_create_accepts_an_initial_status_and_the_longest_title(client: FlaskClient) -> None:
    task = create(client, "x" * TITLE_MAX_LENGTH, "doing")
    assert task["status"] == "doing"
    assert len(task["title"]) == TITLE_MAX_LENGTH


def test_get_update_delete_round_trip(client: FlaskClient) -> None:
    task = create(client, "Draft")

    assert client.get(f"{API}/tasks/{task['id']}").get_json() == task

    renamed = client.patch(f"{API}/tasks/{task['id']}", json={"title": "Final"})
    assert renamed.status_code == 200
    assert renamed.get_json()["title"] == "Final"
    assert renamed.get_json()["status"] == "todo"

    done = client.patch(f"{API}/tasks/{task['id']}", json={"status": "done"})
    assert done.get_json()["status"] == "done"
    assert done.get_json()["title"] == "Final"
    assert done.get_json()["updated_at"] >= task["updated_at"]

    assert client.delete(f"{API}/tasks/{task['id']}").status_code == 204
    assert client.get(f"{API}/tasks/{task['id']}").status_code == 404
    assert client.delete(f"{API}/tasks/{task['id']}").status_code == 404


def test_list_is_newest_first_and_filters_by_status(client: FlaskClient) -> None:
    first = create(client, "first", "todo")
    second = create(client, "second", "done")
    third = create(client, "third", "todo")

    items = client.get(f"{API}/tasks").get_json()["items"]
    assert [t["id"] for t in items] == [third["id"], second["id"], first["id"]]

    todo = client.get(f"{API}/tasks?status=todo").get_json()
    assert [t["id"] for t in todo["items"]] == [third["id"], first["id"]]
    assert todo["next_cursor"] is None
    assert client.get(f"{API}/tasks?status=doing").get_json() == {"items": [], "next_cursor": None}


def test_empty_board_lists_nothing(client: FlaskClient) -> None:
    assert client.get(f"{API}/tasks").get_json() == {"items": [], "next_cursor": None}
    assert client.get(f"{API}/stats").get_json() == {"todo": 0, "doing": 0, "done": 0, "total": 0}


@pytest.mark.parametrize("count, limit", [(5, 2), (4, 2), (1, 1), (3, 100), (7, 1)])
def test_cursor_pages_cover_every_task_once(client: FlaskClient, count: int, limit: int) -> None:
    ids = [create(client, f"task {i}")["id"] for i in range(count)]
    seen: list[int] = []
    pages = 0
    url = f"{API}/tasks?limit={limit}"
    while True:
        page = client.get(url).get_json()
        pages += 1
        assert len(page["items"]) <= limit
        seen += [t["id"] for t in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"{API}/tasks?limit={limit}&cursor={page['next_cursor']}"
    assert seen == sorted(ids, reverse=True)
    assert pages == max(1, -(-count // limit))


def test_cursor_keeps_working_with_a_status_filter(client: FlaskClient) -> None:
    for i in range(5):
        create(client, f"t{i}", "done" if i % 2 else "todo")
    page = client.get(f"{API}/tasks?status=todo&limit=2").get_json()
    rest = client.get(f"{API}/tasks?status=todo&limit=2&cursor={page['next_cursor']}").get_json()
    titles = [t["title"] for t in page["items"] + rest["items"]]
    assert titles == ["t4", "t2", "t0"]
    assert rest["next_cursor"] is None


def test_stats_counts_by_status(client: FlaskClient) -> None:
    for status in ("todo", "todo", "doing", "done", "done", "done"):
        create(client, f"a {status}", status)
    assert client.get(f"{API}/stats").get_json() == {"todo": 2, "doing": 1, "done": 3, "total": 6}


# -- refusals: each names what is wrong and changes nothing -----------------------------------


def _post(client: FlaskClient, data: Any, content_type: str | None = "application/json") -> Any:
    return client.post(f"{API}/tasks", data=data, content_type=content_type)


BAD_CREATES: list[tuple[str, Any, str | None, int, str]] = [
    ("text/plain body", "title=x", "text/plain", 415, "Content-Type"),
    ("no content type", '{"title": "x"}', None, 415, "Content-Type"),
    ("form body", "title=x", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ("malformed JSON", '{"title": ', "application/json", 400, "body"),
    ("NaN is not JSON", '{"title": NaN}', "application/json", 400, "body"),
    ("empty body", "", "application/json", 400, "body"),
    ("invalid UTF-8", b'{"title": "\xff"}', "application/json", 400, "body"),
    ("array body", "[]", "application/json", 422, "body"),
    ("null body", "null", "application/json", 422, "body"),
    ("missing title", "{}", "application/json", 422, "title"),
    ("empty title", '{"title": ""}', "application/json", 422, "title"),
    ("blank title", '{"title": "   \\t "}', "application/json", 422, "title"),
    ("zero-width-space title", '{"title": "\\u200b"}', "application/json", 422, "title"),
    ("invisibles only", '{"title": "\\u200b\\u2060\\ufeff\\u00ad \\u3000\\u3164"}', "application/json", 422, "title"),
    ("bidi controls only", '{"title": "\\u202e\\u2066\\u2069"}', "application/json", 422, "title"),
    ("tag characters only", '{"title": "\\udb40\\udc41\\udb40\\udc42"}', "application/json", 422, "title"),
    ("over-long title", json.dumps({"title": "y" * (TITLE_MAX_LENGTH + 1)}), "application/json", 422, "title"),
    ("numeric title", '{"title": 42}', "application/json", 422, "title"),
    ("null title", '{"title": null}', "application/json", 422, "title"),
    ("NUL in title", '{"title": "a\\u0000b"}', "application/json", 422, "title"),
    ("lone surrogate", '{"title": "a\\ud800b"}', "application/json", 422, "title"),
    ("unknown status", '{"title": "x", "status": "archived"}', "application/json", 422, "status"),
    ("boolean status", '{"title": "x", "status": true}', "application/json", 422, "status"),
    ("unknown field", '{"title": "x", "owner": "me"}', "application/json", 422, "owner"),
]


@pytest.mark.parametrize(
    "data, content_type, status, field", [case[1:] for case in BAD_CREATES], ids=[case[0] for case in BAD_CREATES]
)
def test_bad_creates_are_refused_and_write_nothing(
    client: FlaskClient, empty_database: str, data: Any, content_type: str | None, status: int, field: str
) -> None:
    create(client, "already here")
    before = table_snapshot(empty_database)

    response = _post(client, data, content_type)

    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"error", "detail"}
    assert body["field"] == field and field in body["detail"], body
    assert table_snapshot(empty_database) == before


def test_body_over_the_configured_size_is_refused_with_413(make_app: Any, empty_database: str) -> None:
    client = make_app(MAX_BODY_BYTES="1024").test_client()
    response = _post(client, json.dumps({"title": "z" * 2000}))
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "payload_too_large",
        "detail": "body: larger than 1024 bytes (MAX_BODY_BYTES)",
        "field": "body",
    }
    assert table_snapshot(empty_database) == []


BAD_UPDATES: list[tuple[str, str, int, str]] = [
    ("empty object", "{}", 422, "body"),
    ("unknown field", '{"done": true}', 422, "done"),
    ("bad status", '{"status": "later"}', 422, "status"),
    ("blank title", '{"title": " "}', 422, "title"),
    ("over-long title", json.dumps({"title": "q" * (TITLE_MAX_LENGTH + 1)}), 422, "title"),
    ("malformed", "{", 400, "body"),
]


@pytest.mark.parametrize(
    "data, status, field", [case[1:] for case in BAD_UPDATES], ids=[case[0] for case in BAD_UPDATES]
)
def test_bad_updates_are_refused_and_change_nothing(
    client: FlaskClient, empty_database: str, data: str, status: int, field: str
) -> None:
    task = create(client, "keep me")
    before = table_snapshot(empty_database)

    response = client.patch(f"{API}/tasks/{task['id']}", data=data, content_type="application/json")

    assert response.status_code == status
    body = response.get_json()
    assert body["field"] == field and field in body["detail"], body
    assert table_snapshot(empty_database) == before


def test_update_with_wrong_content_type_is_415(client: FlaskClient, empty_database: str) -> None:
    task = create(client, "keep me")
    before = table_snapshot(empty_database)
    response = client.patch(f"{API}/tasks/{task['id']}", data="status=done", content_type="text/plain")
    assert response.status_code == 415
    assert table_snapshot(empty_database) == before


@pytest.mark.parametrize("task_id", ["999", str(MAX_ID), str(MAX_ID + 1), "99999999999999999999999", "0"])
def test_missing_tasks_are_404_for_every_method(client: FlaskClient, empty_database: str, task_id: str) -> None:
    create(client, "bystander")
    before = table_snapshot(empty_database)
    url = f"{API}/tasks/{task_id}"
    for response in (client.get(url), client.delete(url), client.patch(url, json={"status": "done"})):
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"
    assert table_snapshot(empty_database) == before


@pytest.mark.parametrize("digits", ["١", "１", "߁", "১"], ids=["arabic-indic", "fullwidth", "nko", "bengali"])
def test_ids_in_other_scripts_digits_match_no_route(client: FlaskClient, empty_database: str, digits: str) -> None:
    task = create(client, "target")  # id 1, which int() would read from each of these digits
    assert int(digits) == task["id"]
    before = table_snapshot(empty_database)
    url = f"{API}/tasks/{digits}"
    for response in (client.get(url), client.delete(url), client.patch(url, json={"status": "done"})):
        assert response.status_code == 404
        assert response.get_json()["field"] == "path"
    assert table_snapshot(empty_database) == before


def test_only_invisible_characters_are_refused_as_a_title() -> None:
    import sys
    import unicodedata

    from pydantic import ValidationError

    from app.contract import TaskCreate
    from app.tasks import INVISIBLE

    invisible = {chr(cp) for low, high in INVISIBLE for cp in range(low, high + 1)}
    drawn_nothing = {
        chr(cp)
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) in {"Cc", "Cf", "Zs", "Zl", "Zp"} or chr(cp).isspace()
    }
    assert drawn_nothing <= invisible, sorted(f"U+{ord(c):04X}" for c in drawn_nothing - invisible)
    for char in sorted(drawn_nothing):
        with pytest.raises(ValidationError):
            TaskCreate.model_validate({"title": char * 3})
    # Anything visible among them makes a title, whatever the script.
    for title in ("a", "\u200bx\u200b", "任务", "é", "e\u0301", "😀", "\U0001f1eb\U0001f1f7", " . "):
        assert TaskCreate.model_validate({"title": title}).title == title


@pytest.mark.parametrize("task_id", ["abc", "-1", "1.5", "1e3"])
def test_non_integer_ids_are_404(client: FlaskClient, task_id: str) -> None:
    response = client.get(f"{API}/tasks/{task_id}")
    assert response.status_code == 404
    assert response.is_json


BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=-1", "limit"),
    ("limit=abc", "limit"),
    ("limit=1.5", "limit"),
    ("limit=%EF%BC%91", "limit"),  # a full-width digit: isdigit() says yes, int() would too
    ("status=archived", "status"),
    ("status=", "status"),  # the enum refuses the empty string, as the OpenAPI document says
    ("cursor=not-a-cursor", "cursor"),
    ("cursor=", "cursor"),
    ("cursor=0", "cursor"),
    ("cursor=-1", "cursor"),
    ("cursor=1.5", "cursor"),
    ("cursor=%EF%BC%93", "cursor"),
    (f"cursor={MAX_ID + 1}", "cursor"),  # beyond bigint: must not reach the driver
    ("sort=title", "sort"),
]


@pytest.mark.parametrize("query, field", BAD_QUERIES)
def test_bad_list_queries_are_400_naming_the_parameter(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"{API}/tasks?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["field"] == field
    assert field in response.get_json()["detail"]


def test_unsupported_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put(f"{API}/tasks/1", json={"title": "x"})
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert response.get_json()["field"] == "method"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH", "DELETE"}


def test_unknown_paths_are_json_404(client: FlaskClient) -> None:
    response = client.get(f"{API}/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert response.get_json()["field"] == "path"


# -- the OpenAPI document describes exactly the routes that exist -----------------------------


def _flask_operations(app: Flask) -> set[tuple[str, str]]:
    from app.metrics import route_template

    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(f"{API}/") and rule.endpoint != "api.openapi":
            for method in rule.methods or ():
                if method not in {"HEAD", "OPTIONS"}:
                    operations.add((route_template(rule.rule), method.lower()))
    return operations


def test_openapi_document_lists_exactly_the_api_routes(app: Flask, client: FlaskClient) -> None:
    spec = client.get(endpoints.OPENAPI).get_json()
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented == _flask_operations(app)
    assert spec["openapi"].startswith("3.1")


def test_openapi_document_is_a_valid_openapi_31_document(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    validate(client.get(endpoints.OPENAPI).get_json())


def test_openapi_limits_follow_configuration(make_app: Any) -> None:
    spec = make_app(API_MAX_LIMIT="50", PAGE_SIZE="10").test_client().get(endpoints.OPENAPI).get_json()
    limit = next(p for p in spec["paths"][f"{API}/tasks"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 50
    assert limit["schema"]["default"] == 10


def test_the_documented_limit_is_the_enforced_limit(make_app: Any) -> None:
    client = make_app(API_MAX_LIMIT="50", PAGE_SIZE="10").test_client()
    spec = client.get(endpoints.OPENAPI).get_json()
    limit = next(p for p in spec["paths"][f"{API}/tasks"]["get"]["parameters"] if p["name"] == "limit")
    maximum = limit["schema"]["maximum"]
    assert client.get(f"{API}/tasks?limit={maximum}").status_code == 200
    refused = client.get(f"{API}/tasks?limit={maximum + 1}")
    assert refused.status_code == 400
    assert refused.get_json()["detail"] == f"limit: must be an integer from 1 to {maximum}"


@pytest.mark.parametrize("value", ["+5", " 5", "5.0", "5_0"])
def test_integer_parameters_are_ascii_digits_only(client: FlaskClient, value: str) -> None:
    # pydantic's lax int reads every one of these as 5 or 50; the contract says digits.
    for name in ("limit", "cursor"):
        response = client.get(f"{API}/tasks", query_string={name: value})
        assert response.status_code == 400, (name, value)
        assert response.get_json()["field"] == name
