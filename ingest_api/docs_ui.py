"""Swagger UI at /docs, with its files served by the API itself.

Litestar's Swagger plugin loads Swagger UI from a CDN by default, which leaves /docs a
blank page wherever the CDN cannot be reached (offline, air-gapped, strict egress).
The files come from the pinned ``swagger-ui-bundle-v2`` package instead; only the few
the page needs are served, read once and kept in memory (about 2 MB).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin

ASSETS_PATH = "/docs/assets"
# The files the page loads, with their media types: nothing else is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def swagger_plugin() -> SwaggerRenderPlugin:
    """The Swagger UI page, pointed at the files below instead of the CDN."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


@cache
def _read(name: str) -> bytes:
    import swagger_ui_bundle  # type: ignore[import-untyped]  # only resolves a path

    directory: Path = swagger_ui_bundle.swagger_ui_path
    return (directory / name).read_bytes()


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def docs_asset(name: str) -> Response[bytes]:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(f"no such documentation asset: {name!r}")
    return Response(
        _read(name), media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
    )
