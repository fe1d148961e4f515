"""Hostile input against the real server (gunicorn, production config), over raw sockets.

Each request is written byte for byte, so framing the HTTP clients would tidy up (chunked bodies past
the limit, broken chunk sizes, short bodies) reaches the service as a hostile client sends it.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from app import endpoints
from app.security import _HEADERS as SECURITY_HEADERS
from local.stack import Stack, StackSettings, free_port
from tests.conftest import TEST_SECRET, execute, table_snapshot
from tests.tiers import slow_fixture

API = endpoints.API_PREFIX
TASKS = f"{API}/tasks"
LIMIT = 16 * 1024  # MAX_BODY_BYTES of the server below


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.headers.get('Content-Type')} {self.body[:300]!r}"


@pytest.fixture(scope="module")
@slow_fixture("starts the app under gunicorn")
def server(tmp_path_factory: pytest.TempPathFactory, migrated_database: Callable[[], str]) -> Iterator[Stack]:
    """One gunicorn for the module: starting one per case would dominate the run time."""
    settings = StackSettings(
        state_dir=tmp_path_factory.mktemp("hostile"),
        app_port=free_port(),
        database_url=migrated_database(),
        workers=2,
        seed=False,
        fault_injection=False,
        app_env={"APP_ENV": "test", "SECRET_KEY": TEST_SECRET, "MAX_BODY_BYTES": str(LIMIT)},
    )
    stack = Stack(settings)
    stack.start_app(log_to_terminal=False)
    yield stack
    stack.stop()


@pytest.fixture
def database(server: Stack) -> str:
    """The server's database, holding one bystander task, so "nothing changed" compares a real row."""
    url = server.database_url
    execute(url, "TRUNCATE tasks RESTART IDENTITY")
    execute(url, "INSERT INTO tasks (title) VALUES ('bystander')")
    return url


def exchange(server: Stack, head: bytes, body: Iterable[bytes] = (), *, half_close: bool = False) -> Reply:
    """Send ``head`` then ``body`` on one connection while reading the reply on another thread.

    The reply is read concurrently because a server may answer (413) before taking the whole body;
    a send that fails then is expected, and the reply says why. ``half_close`` ends the sending side
    early, as a client that gives up mid-body does, while still reading the answer.
    """
    sock = socket.create_connection(("127.0.0.1", server.settings.app_port), timeout=20)
    replies: list[Reply | BaseException] = []

    def read() -> None:
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            replies.append(Reply(response.status, response.headers, response.read()))
        except (OSError, http.client.HTTPException) as exc:
            replies.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        sock.sendall(head)
        for part in body:
            sock.sendall(part)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    reader.join(30)
    sock.close()
    assert replies, "no reply within 30 s"
    (reply,) = replies
    if isinstance(reply, BaseException):
        raise AssertionError(f"no HTTP reply: {reply!r}") from reply
    return reply


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``data`` as HTTP/1.1 chunks of ``size`` bytes, then the last chunk."""
    for start in range(0, len(data), size):
        part = data[start : start + size]
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def post_chunked(server: Stack, data: bytes) -> Reply:
    head = request_head("POST", TASKS, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    return exchange(server, head, chunked(data))


def post_sized(server: Stack, data: bytes) -> Reply:
    head = request_head("POST", TASKS, {"Content-Type": "application/json", "Content-Length": str(len(data))})
    return exchange(server, head, [data])


def json_of_size(size: int, title: str = "fits") -> bytes:
    """A valid task body padded with JSON whitespace to exactly ``size`` bytes."""
    compact = json.dumps({"title": title}).encode()
    return compact[:-1] + b" " * (size - len(compact)) + b"}"


def assert_refusal(reply: Reply, status: int, field: str, error: str | None = None) -> None:
    """The README's refusal: this status, JSON ``{"error", "detail", "field"}``, every security header."""
    assert reply.status == status, str(reply)
    assert reply.headers.get_content_type() == "application/json", str(reply)
    body = reply.json()
    assert set(body) == {"error", "detail", "field"}, body
    assert body["field"] == field, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if error is not None:
        assert body["error"] == error, body
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value, (name, reply.headers[name])
    assert reply.headers["Cache-Control"] == "no-store"


def assert_too_large(reply: Reply) -> None:
    assert_refusal(reply, 413, "body", "payload_too_large")


# -- the body limit, however the body is framed ----------------------------------------------


def test_a_chunked_body_far_past_the_limit_is_413_even_when_its_start_is_valid_json(
    server: Stack, database: str
) -> None:
    before = table_snapshot(database)
    # The first LIMIT bytes alone are a valid task: a server that cuts the body at the limit and
    # parses what it kept creates a task from a 10 MB request.
    data = json_of_size(LIMIT, "smuggled") + b"x" * (10 * 1024 * 1024)
    assert_too_large(post_chunked(server, data))
    assert table_snapshot(database) == before


def test_a_chunked_body_just_past_the_limit_is_413_not_invalid_json(server: Stack, database: str) -> None:
    before = table_snapshot(database)
    assert_too_large(post_chunked(server, json.dumps({"title": "y" * 40 * 1024}).encode()))
    assert_too_large(post_chunked(server, json_of_size(LIMIT + 1)))
    assert table_snapshot(database) == before


@pytest.mark.parametrize("size", [len(json_of_size(0)), LIMIT], ids=["small", "exactly the limit"])
def test_a_chunked_body_within_the_limit_is_created(server: Stack, database: str, size: int) -> None:
    reply = post_chunked(server, json_of_size(size))
    assert reply.status == 201, str(reply)
    assert reply.json()["title"] == "fits"
    assert [row[1] for row in table_snapshot(database)] == ["bystander", "fits"]


def test_a_content_length_past_the_limit_is_413(server: Stack, database: str) -> None:
    before = table_snapshot(database)
    assert_too_large(post_sized(server, json_of_size(LIMIT + 1)))
    assert post_sized(server, json_of_size(LIMIT)).status == 201
    assert len(table_snapshot(database)) == len(before) + 1


def test_a_form_post_past_the_limit_is_refused_and_writes_nothing(server: Stack, database: str) -> None:
    # The page's form goes through Werkzeug's form parser (and the CSRF check before it), which cut
    # a chunked body at the limit as silently as the JSON path did.
    session = requests.Session()
    page = session.get(f"{server.settings.app_url}/", timeout=5)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "the page has no CSRF token"
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    form = f"csrf_token={token.group(1)}&title=smuggled&padding=".encode()
    head = request_head(
        "POST",
        "/tasks",
        {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked", "Cookie": cookie},
    )
    before = table_snapshot(database)
    reply = exchange(server, head, chunked(form + b"x" * (LIMIT * 4)))
    assert reply.status == 413, str(reply)
    assert reply.headers.get_content_type() == "text/html"  # the page's own error style
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value
    assert table_snapshot(database) == before


# -- framing that lies ----------------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_writes_nothing(server: Stack, database: str) -> None:
    before = table_snapshot(database)
    data = json.dumps({"title": "half sent"}).encode()
    head = request_head("POST", TASKS, {"Content-Type": "application/json", "Content-Length": str(len(data) + 100)})
    # The client stops sending (and says so) but still reads: a dropped upload, as the server sees it.
    reply = exchange(server, head, [data], half_close=True)
    assert_refusal(reply, 400, "body")
    assert table_snapshot(database) == before


MALFORMED_CHUNKS = [
    ("size not hex", b"zz\r\n{}\r\n0\r\n\r\n"),
    ("size larger than the data", b"50\r\n{}\r\n0\r\n\r\n"),
    ("chunk without its CRLF", b'10\r\n{"title": "xy"}XX0\r\n\r\n'),
    ("negative size", b"-2\r\n{}\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("body", [case[1] for case in MALFORMED_CHUNKS], ids=[case[0] for case in MALFORMED_CHUNKS])
def test_malformed_chunk_framing_is_400_not_a_server_error(server: Stack, database: str, body: bytes) -> None:
    before = table_snapshot(database)
    head = request_head("POST", TASKS, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    reply = exchange(server, head, [body], half_close=True)
    assert_refusal(reply, 400, "body")
    assert table_snapshot(database) == before


# -- every documented refusal, as the server sends it -----------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    field: str
    body: bytes = b""
    content_type: str | None = "application/json"
    error: str | None = None


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


ZWSP_TITLE = b'{"title": "\\u200b\\u200b"}'
CORPUS = [
    # 400: malformed JSON or query
    Case("invalid JSON", "POST", TASKS, 400, "body", b'{"title": ', error="invalid_json"),
    Case("empty body", "POST", TASKS, 400, "body", b"", error="invalid_json"),
    Case("NaN", "POST", TASKS, 400, "body", b'{"title": NaN}', error="invalid_json"),
    Case("invalid UTF-8", "POST", TASKS, 400, "body", b'{"title": "\xff\xfe"}', error="invalid_json"),
    Case("UTF-8 overlong slash", "POST", TASKS, 400, "body", b'{"title": "\xc0\xaf"}', error="invalid_json"),
    Case("deep nesting", "POST", TASKS, 400, "body", b"[" * 5000 + b"]" * 5000, error="invalid_json"),
    Case("empty status filter", "GET", f"{TASKS}?status=", 400, "status"),
    Case("unknown status filter", "GET", f"{TASKS}?status=archived", 400, "status"),
    Case("fullwidth limit", "GET", f"{TASKS}?limit=%EF%BC%95", 400, "limit"),
    Case("cursor past bigint", "GET", f"{TASKS}?cursor=9223372036854775808", 400, "cursor"),
    Case("unknown parameter", "GET", f"{TASKS}?sort=title", 400, "sort"),
    # 404: no such task, or no such route
    Case("missing task", "GET", f"{TASKS}/424242", 404, "task_id"),
    Case("delete a missing task", "DELETE", f"{TASKS}/424242", 404, "task_id"),
    Case("arabic-indic id", "GET", f"{TASKS}/%D9%A1", 404, "path"),
    Case("delete by arabic-indic id", "DELETE", f"{TASKS}/%D9%A1", 404, "path"),
    Case("delete by fullwidth id", "DELETE", f"{TASKS}/%EF%BC%91", 404, "path"),
    Case("patch by fullwidth id", "PATCH", f"{TASKS}/%EF%BC%91", 404, "path", _json({"status": "done"})),
    Case("unknown route", "GET", f"{API}/nothing-here", 404, "path"),
    Case("operational path under the API", "GET", f"{API}{endpoints.METRICS}", 404, "path"),
    # 405, with Allow
    Case("PUT on a task", "PUT", f"{TASKS}/1", 405, "method", _json({"title": "x"})),
    Case("DELETE on the list", "DELETE", TASKS, 405, "method"),
    Case("unknown method", "BREW", TASKS, 405, "method"),
    # 413
    Case("sized body past the limit", "POST", TASKS, 413, "body", _json({"title": "z" * LIMIT})),
    # 415: not JSON
    Case("text/plain", "POST", TASKS, 415, "Content-Type", _json({"title": "x"}), "text/plain"),
    Case("no Content-Type", "POST", TASKS, 415, "Content-Type", _json({"title": "x"}), None),
    Case("form body", "POST", TASKS, 415, "Content-Type", b"title=x", "application/x-www-form-urlencoded"),
    Case("JSON-looking type", "POST", TASKS, 415, "Content-Type", _json({"title": "x"}), "application/jsonx"),
    Case("patch as text", "PATCH", f"{TASKS}/1", 415, "Content-Type", _json({"status": "done"}), "text/plain"),
    # 422: schema violations, odd Unicode among them
    Case("zero-width-space title", "POST", TASKS, 422, "title", ZWSP_TITLE),
    Case("bidi-controls title", "POST", TASKS, 422, "title", b'{"title": "\\u202e\\u2066\\u2069"}'),
    Case("tag-characters title", "POST", TASKS, 422, "title", b'{"title": "\\udb40\\udc41\\udb40\\udc7f"}'),
    Case("hangul-filler title", "POST", TASKS, 422, "title", b'{"title": "\\u3164\\u115f"}'),
    Case("lone surrogate", "POST", TASKS, 422, "title", b'{"title": "a\\ud800b"}'),
    Case("NUL in title", "POST", TASKS, 422, "title", b'{"title": "a\\u0000b"}'),
    Case("raw NUL byte", "POST", TASKS, 400, "body", b'{"title": "a\x00b"}', error="invalid_json"),
    Case("title too long", "POST", TASKS, 422, "title", _json({"title": "界" * 201})),
    Case("array body", "POST", TASKS, 422, "body", b"[]"),
    Case("unknown member", "POST", TASKS, 422, "owner", _json({"title": "x", "owner": "me"})),
    Case("duplicate-key status", "POST", TASKS, 422, "status", b'{"title": "x", "status": "done", "status": "nope"}'),
    Case("empty update", "PATCH", f"{TASKS}/1", 422, "body", b"{}"),
    Case("bad status update", "PATCH", f"{TASKS}/1", 422, "status", _json({"status": "later"})),
]


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_each_documented_refusal_is_json_with_its_field_and_writes_nothing(
    server: Stack, database: str, case: Case
) -> None:
    headers = {"Content-Length": str(len(case.body))}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    before = table_snapshot(database)
    reply = exchange(server, request_head(case.method, case.path, headers), [case.body])
    assert_refusal(reply, case.status, case.field, case.error)
    if case.status == 405:
        assert reply.headers["Allow"], "405 names the methods the path takes"
    assert table_snapshot(database) == before


# -- refusals gunicorn makes before the application sees the request --------------------------


@pytest.mark.parametrize(
    "raw, status, field",
    [
        (f"GET {TASKS}?q={'a' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 414, "path"),
        (
            f"GET {TASKS} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"".join(f"X-H{i}: v\r\n".encode() for i in range(120))
            + b"\r\n",
            431,
            "headers",
        ),
        (f"GET {TASKS} HTTP/1.1\r\nHost: x\r\nX-Long: {'v' * 9000}\r\n\r\n".encode(), 431, "headers"),
        (b"GARBAGE\r\n\r\n", 400, "request"),
        (f"GET {TASKS} HTTP/9.9\r\nHost: x\r\n\r\n".encode(), 400, "request"),
    ],
    ids=["URI too long", "too many headers", "header too long", "bad request line", "bad HTTP version"],
)
def test_gunicorn_s_own_refusals_are_json_with_the_security_headers(
    server: Stack, database: str, raw: bytes, status: int, field: str
) -> None:
    before = table_snapshot(database)
    reply = exchange(server, raw)
    assert_refusal(reply, status, field)
    assert table_snapshot(database) == before
