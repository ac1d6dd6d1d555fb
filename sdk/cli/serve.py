"""Run the ingest API under an ASGI server, imported by name so sdk never imports it.

uvicorn (uvloop + httptools) is the default; granian (a Rust HTTP server) is the
alternative. docs/benchmarks.md has the comparison that chose the default.
"""

from __future__ import annotations

APP = "ingest_api.app:create_app_from_env"


def serve(*, server: str, host: str, port: int, workers: int) -> None:
    if server == "granian":
        from granian.constants import Interfaces, Loops
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
        http="httptools",
        log_config=None,
        access_log=False,
    )
