"""How the ingest endpoints read a request without Litestar's header and body helpers
(ingest_api.headers, parsing.read_body): the same answers as those helpers, on real
Litestar request objects over scripted ASGI messages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from ingest_api.errors import BodyTooLarge, ClientDisconnected
from ingest_api.headers import header
from ingest_api.parsing import read_body


def request(
    headers: Iterable[tuple[bytes, bytes]], messages: Iterable[dict[str, Any]]
) -> Request[Any, Any, Any]:
    pending = list(messages)
    received: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not pending:
            raise AssertionError("read past the end of the request")
        received.append(pending[0])
        return pending.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}
    req: Request[Any, Any, Any] = Request(scope, receive)  # type: ignore[arg-type]
    req.scope["received"] = received  # type: ignore[typeddict-unknown-key]
    return req


def body(chunk: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": chunk, "more_body": more}


HEADERS = [
    (b"content-type", b"application/json"),
    (b"Authorization", b"Bearer k\xe9y"),  # upper case, as a test client might send it
    (b"x-twice", b"first"),
    (b"x-twice", b"second"),
]


@pytest.mark.parametrize("name", ["content-type", "authorization", "x-twice", "x-missing"])
def test_header_answers_as_litestar_headers_do(name: str) -> None:
    req = request(HEADERS, [])
    assert header(req, name) == req.headers.get(name)


def test_header_names_are_asked_for_in_any_case() -> None:
    assert header(request(HEADERS, []), "X-Twice") == "first"
    assert header(request(HEADERS, []), "AUTHORIZATION") == "Bearer k\xe9y"


def test_header_values_are_the_bytes_sent_as_latin_1() -> None:
    assert header(request(HEADERS, []), "authorization") == "Bearer k\xe9y"


def test_the_body_is_joined_from_its_chunks() -> None:
    first = request([], [body(b'{"a":', more=True), body(b"", more=True), body(b"1}")])
    assert asyncio.run(read_body(first, 100)) == b'{"a":1}'
    assert asyncio.run(read_body(request([], [body(b"")]), 100)) == b""


def test_an_announced_length_over_the_limit_is_refused_before_reading() -> None:
    req = request([(b"content-length", b"101")], [body(b"x")])
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(req, 100))
    assert req.scope["received"] == []  # type: ignore[typeddict-item]


def test_a_body_over_the_limit_is_refused_at_the_chunk_that_crosses_it() -> None:
    # No Content-Length (chunked), or one that lies: the bytes themselves are counted.
    chunks = [body(b"x" * 60, more=True), body(b"x" * 60, more=True), body(b"x" * 60)]
    for headers in ([], [(b"content-length", b"10")]):
        req = request(headers, chunks)
        with pytest.raises(BodyTooLarge):
            asyncio.run(read_body(req, 100))
        assert len(req.scope["received"]) == 2  # type: ignore[typeddict-item]


def test_a_client_gone_before_its_body_ended_is_a_4xx_not_a_500() -> None:
    req = request([], [body(b"{", more=True), {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnected) as caught:
        asyncio.run(read_body(req, 100))
    assert caught.value.status_code == 400


def test_a_body_read_before_is_returned_again_and_one_read_here_is_kept() -> None:
    """receive() is spent once the body is read: read_body and request.body() must find
    it wherever it was read first, never wait on receive() again (a real app)."""

    @post("/first-litestar", status_code=200)
    async def litestar_first(request: Request[Any, Any, Any]) -> list[str]:
        return [(await request.body()).decode(), (await read_body(request, 100)).decode()]

    @post("/first-ours", status_code=200)
    async def ours_first(request: Request[Any, Any, Any]) -> list[str]:
        return [(await read_body(request, 100)).decode(), (await request.body()).decode()]

    @post("/limit", status_code=200)
    async def limit(request: Request[Any, Any, Any]) -> str:
        await request.body()
        try:
            await read_body(request, 3)
        except BodyTooLarge:
            return "refused"
        return "read"

    app = Litestar([litestar_first, ours_first, limit])
    with TestClient(app, timeout=10) as client:
        for path in ("/first-litestar", "/first-ours"):
            assert client.post(path, content=b'{"a":1}').json() == ['{"a":1}', '{"a":1}']
        assert client.post("/limit", content=b"1234").text == "refused"
