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

        from sdk.logs import logging_dict_config, resolve_format

        Server(
            APP,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            # Its own loggers in wdp's format (WDP_LOG_FORMAT), in every worker too.
            log_dictconfig=logging_dict_config(resolve_format(default="json")),
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
        log_config=None,  # uvicorn's loggers propagate to wdp's root handler (sdk.logs)
        access_log=False,
    )
