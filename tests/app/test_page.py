"""The HTML page through Flask's client: listing, filter, pages, stats, the form and its CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from app.tasks import TITLE_MAX_LENGTH
from tests.conftest import execute, table_snapshot


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def add(client: FlaskClient, title: str) -> None:
    response = client.post("/tasks", data={"title": title, "csrf_token": csrf_token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)


def test_page_lists_newest_first_with_stats(client: FlaskClient) -> None:
    add(client, "older")
    add(client, "newer")
    page = client.get("/").get_data(as_text=True)
    assert page.index("newer") < page.index("older")
    assert re.search(r"todo <strong>2</strong>", page)
    assert re.search(r"total <strong>2</strong>", page)


def test_form_post_redirects_and_stores_the_task(client: FlaskClient, empty_database: str) -> None:
    response = client.post("/tasks", data={"title": "From the form", "csrf_token": csrf_token(client)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert execute(empty_database, "SELECT title FROM tasks") == [("From the form",)]


def test_form_without_csrf_token_is_refused_and_writes_nothing(client: FlaskClient, empty_database: str) -> None:
    response = client.post("/tasks", data={"title": "forged"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert table_snapshot(empty_database) == []


def test_form_with_a_forged_token_is_refused(client: FlaskClient, empty_database: str) -> None:
    csrf_token(client)
    response = client.post("/tasks", data={"title": "forged", "csrf_token": "not-the-token"})
    assert response.status_code == 400
    assert table_snapshot(empty_database) == []


def test_invalid_title_re_renders_the_form_with_the_reason(client: FlaskClient, empty_database: str) -> None:
    token = csrf_token(client)
    response = client.post("/tasks", data={"title": "x" * (TITLE_MAX_LENGTH + 1), "csrf_token": token})
    assert response.status_code == 422
    assert f"at most {TITLE_MAX_LENGTH} characters" in response.get_data(as_text=True)
    assert table_snapshot(empty_database) == []


def test_titles_are_escaped(client: FlaskClient) -> None:
    add(client, "<script>alert(1)</script>")
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_status_buttons_move_a_task(client: FlaskClient, empty_database: str) -> None:
    add(client, "move me")
    task_id = execute(empty_database, "SELECT id FROM tasks")[0][0]
    response = client.post(f"/tasks/{task_id}/status", data={"status": "done", "csrf_token": csrf_token(client)})
    assert response.status_code == 303
    assert execute(empty_database, "SELECT status FROM tasks") == [("done",)]
    bad = client.post(f"/tasks/{task_id}/status", data={"status": "later", "csrf_token": csrf_token(client)})
    assert bad.status_code == 422
    missing = client.post("/tasks/999999/status", data={"status": "done", "csrf_token": csrf_token(client)})
    assert missing.status_code == 404
    assert execute(empty_database, "SELECT status FROM tasks") == [("done",)]


def test_filter_and_pages(make_app: object, empty_database: str) -> None:
    client = make_app(PAGE_SIZE="2").test_client()  # type: ignore[operator]
    for i in range(5):
        add(client, f"task-{i}")
    first = client.get("/").get_data(as_text=True)
    assert "task-4" in first and "task-3" in first and "task-2" not in first
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "task-2" in second and "task-1" in second and "task-4" not in second
    assert "Newest" in second

    client.post("/tasks/1/status", data={"status": "done", "csrf_token": csrf_token(client)})
    done = client.get("/?status=done").get_data(as_text=True)
    assert "task-0" in done and "task-4" not in done


def test_bad_filter_is_an_html_400(client: FlaskClient) -> None:
    response = client.get("/?status=someday")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "status: must be one of" in response.get_data(as_text=True)
    assert client.get("/?cursor=zzz").status_code == 400
    empty = client.get("/?status=")
    assert empty.status_code == 400
    assert empty.mimetype == "text/html"
    assert "status: must be one of" in empty.get_data(as_text=True)


def test_ids_in_other_scripts_digits_move_no_task(client: FlaskClient, empty_database: str) -> None:
    add(client, "stays todo")
    response = client.post("/tasks/١/status", data={"status": "done", "csrf_token": csrf_token(client)})
    assert response.status_code == 404
    assert execute(empty_database, "SELECT status FROM tasks") == [("todo",)]
