"""The ingest benchmark's load generators: a minimal keep-alive client, or httpx.

The client runs on the same cores as the API and Postgres, so it must cost as little as
possible: requests are pre-serialised and sent from one event-loop thread.
"""

from __future__ import annotations

import asyncio

import httpx

from benchmarks.harness import BenchmarkError
from sdk.cli.launch import ApiServer

KINDS = ("raw", "httpx")


class RawPool:
    """A minimal HTTP/1.1 keep-alive client: pre-built requests, Content-Length responses.

    httpx costs ~1 ms of CPU per request on a 2-core VM with one connection and ~3 ms
    with 32 (its pool bookkeeping grows with the number of connections), so it saturates
    its thread before the server does. This client costs a few tens of µs per request.
    """

    def __init__(self, server: ApiServer, connections: int) -> None:
        url = httpx.URL(server.base_url)
        self.host, self.port = url.host, url.port or 80
        self.connections = connections
        self.head = (
            f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {server.api_key}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawPool:
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._all.append(writer)
            self._idle.put_nowait((reader, writer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._idle.get()
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
                % (path.encode(), self.head, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise BenchmarkError(f"response without Content-Length: {head!r}")
            payload = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self._idle.put_nowait((reader, writer))
        return status, payload


class HttpxPool:
    """The same interface over httpx.AsyncClient (``--client httpx``)."""

    def __init__(self, server: ApiServer, connections: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=server.base_url,
            headers={**server.auth, "content-type": "application/json"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(120.0),
        )

    async def __aenter__(self) -> HttpxPool:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(None, None, None)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        resp = await self.client.post(path, content=body)
        return resp.status_code, resp.content


def client_pool(kind: str, server: ApiServer, connections: int) -> RawPool | HttpxPool:
    """A pool of ``connections`` keep-alive connections of the ``kind`` given by --client."""
    return (RawPool if kind == "raw" else HttpxPool)(server, connections)
