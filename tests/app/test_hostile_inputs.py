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
from local.stack import Stack, StackSettings, free_port
from tests.conftest import TEST_SECRET, execute, table_snapshot

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


@pytest.fixture(scope="module")
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


def assert_too_large(reply: Reply) -> None:
    assert reply.status == 413, reply
    assert reply.json() == {"error": "payload_too_large", "detail": reply.json()["detail"], "field": "body"}


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
    assert reply.status == 201, reply
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
    assert reply.status == 413, reply
    assert reply.headers.get_content_type() == "text/html"
    assert table_snapshot(database) == before


# -- framing that lies ----------------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_writes_nothing(server: Stack, database: str) -> None:
    before = table_snapshot(database)
    data = json.dumps({"title": "half sent"}).encode()
    head = request_head("POST", TASKS, {"Content-Type": "application/json", "Content-Length": str(len(data) + 100)})
    # The client stops sending (and says so) but still reads: a dropped upload, as the server sees it.
    reply = exchange(server, head, [data], half_close=True)
    assert reply.status == 400, reply
    assert reply.json()["field"] == "body"
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
    assert reply.status == 400, reply
    assert reply.json()["field"] == "body"
    assert table_snapshot(database) == before
