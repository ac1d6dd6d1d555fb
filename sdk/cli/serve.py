"""Run the ingest API under an ASGI server, imported by name so sdk never imports it.

uvicorn (uvloop + httptools) is the default; granian (a Rust HTTP server) is the
alternative. docs/benchmarks.md has the comparison that chose the default.
"""

from __future__ import annotations

APP = "ingest_api.app:create_app_from_env"
# uvicorn's httptools protocol plus a header-read deadline (INGEST_HEADER_TIMEOUT_S).
HTTP_PROTOCOL = "ingest_api.server:HeaderTimeoutHttpToolsProtocol"


def serve(*, server: str, host: str, port: int, workers: int) -> None:
    from sdk.settings import get_settings

    header_timeout_s = get_settings().ingest_header_timeout_s
    if server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings
        from granian.server import Server

        Server(
            APP,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            http1_settings=HTTP1Settings(header_read_timeout=int(header_timeout_s * 1000)),
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=HTTP_PROTOCOL,
        log_config=None,
        access_log=False,
    )
