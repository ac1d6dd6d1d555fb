"""Run the ingest API under an ASGI server, imported by name so sdk never imports it.

uvicorn (uvloop + httptools) is the default; granian (a Rust HTTP server) is the
alternative. docs/benchmarks.md has the comparison that chose the default.

The client address matters: the failed-authentication limit counts per address. uvicorn
by default believes ``X-Forwarded-For`` from any loopback peer, so every local client
(or a same-host proxy passing the header through) could pick the address it is charged
to, dodge the limit, and lock others out. The header is believed only from the proxies
named in ``INGEST_TRUSTED_PROXIES``.
"""

from __future__ import annotations

APP = "ingest_api.app:create_app_from_env"
# uvicorn's httptools protocol plus a header-read deadline (INGEST_HEADER_TIMEOUT_S).
HTTP_PROTOCOL = "ingest_api.server:HeaderTimeoutHttpToolsProtocol"


def serve(*, server: str, host: str, port: int, workers: int) -> None:
    from sdk.settings import get_settings

    settings = get_settings()
    header_timeout_s = settings.ingest_header_timeout_s
    trusted = settings.ingest_trusted_proxies.strip()
    if server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.http import HTTP1Settings
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
            # Milliseconds, at least one (0 would mean "no deadline").
            http1_settings=HTTP1Settings(
                header_read_timeout=max(1, round(header_timeout_s * 1000))
            ),
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
        http=HTTP_PROTOCOL,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        log_config=None,  # uvicorn's loggers propagate to wdp's root handler (sdk.logs)
        access_log=False,
    )
