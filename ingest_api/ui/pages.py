"""The UI's pages: runs, one run, usage; login and logout; artifact downloads.

Server-rendered from :mod:`sdk.usage`'s answers, the same queries the read API and the
CLI run (so the three agree), on the read pool, with the read statement timeout. The
templates (``templates/``) autoescape everything: event payloads are user data. Tables
and charts work with JavaScript off; the pages load no script at all.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
from litestar import MediaType, Request, Response, Router, get, post
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Stream, Template

from ingest_api.auth import Scope
from ingest_api.errors import ApiError, Forbidden, NotFound, StoreUnavailable
from ingest_api.read import answering, run_read
from ingest_api.ui.access import (
    Caller,
    LoginRequired,
    UiState,
    caller_of,
    login_url,
    safe_next,
    security_headers,
    session_cookie,
)
from ingest_api.ui.charts import last_days, usage_bars, waterfall
from ingest_api.ui.templating import environment
from sdk.usage.errors import InvalidQuery
from sdk.usage.runs import list_runs, run_detail, runs_query
from sdk.usage.usage import usage_query, usage_report

if TYPE_CHECKING:
    from ingest_api.app import Services

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"ui.css": "text/css; charset=utf-8"}
FILTERS = ("workflow_name", "item_id", "status", "since", "until")
GROUPINGS = {"model": "model", "workflow_name": "workflow", "node": "node", "agent_role": "role"}
USAGE_DAYS = 30
CHUNK = 64 * 1024


RUN_TEMPLATE = environment().get_template("run.html")


class BadForm(ApiError):
    status_code = 400
    error = "bad_form"


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def _context(caller: Caller | None, **ctx: Any) -> dict[str, Any]:
    """What every page's template gets: the logout form's token, when logged in."""
    session = caller.session if caller else None
    return {"csrf": session.csrf if session else None, "logged_in": session is not None, **ctx}


def _page(
    request: Request[Any, Any, Any], name: str, caller: Caller | None, code: int = 200, **ctx: Any
) -> Template:
    return Template(template_name=name, context=_context(caller, **ctx), status_code=code)


# --- access -----------------------------------------------------------------------------


@get("/", name="ui-home")
async def home() -> Redirect:
    return Redirect("/ui/runs", status_code=303)


@get("/login")
async def login_form(request: Request[Any, Any, Any]) -> Template:
    next_path = safe_next(request.query_params.get("next"))
    return _page(request, "login.html", None, next_path=next_path, message=None)


@post("/login", request_max_body_size=8192)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    same_origin(request)
    form = await _form(request)
    key, next_path = str(form.get("key") or ""), safe_next(str(form.get("next") or ""))
    state = UiState.of(request)
    try:
        digest = _services(request).auth.check_key(request, key, Scope.READ)
    except ApiError as exc:
        # The key is never echoed back; the reason is (wrong key, not a read key, locked out).
        page = _page(
            request, "login.html", None, exc.status_code, next_path=next_path, message=exc.detail
        )
        page.headers.update(exc.headers)  # Retry-After of a 429
        return page
    response = Redirect(next_path, status_code=303)
    response.headers["Set-Cookie"] = session_cookie(
        request, state.signer.issue(digest), state.signer.lifetime_s
    )
    return response


@post("/logout", request_max_body_size=8192)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    same_origin(request)
    caller = caller_of(request)
    form = await _form(request)
    if caller.session is None or not _same(str(form.get("csrf") or ""), caller.session.csrf):
        raise LoginRequired("/ui/runs", "that logout was not sent by this page: log in again")
    response = Redirect("/ui/login", status_code=303)
    response.headers["Set-Cookie"] = session_cookie(request, "", 0)
    return response


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The fields of a URL-encoded form (all the pages send): anything else is a 400
    page, never a parser's exception."""
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadForm("send the form as application/x-www-form-urlencoded, as the page does")
    try:
        raw = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadForm("the form is not UTF-8") from None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True, max_num_fields=20):
        fields.setdefault(name, value)
    return fields


def same_origin(request: Request[Any, Any, Any]) -> None:
    """Refuse a form posted from another site (a browser says where from in ``Origin``):
    no one logs a visitor in with the attacker's key, or out."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-site form (browsers send Origin with every POST)
    host = request.headers.get("host", "")
    if origin.split("://", 1)[-1].lower() != host.lower():
        raise Forbidden("this form can only be sent from the UI's own pages")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- runs ---------------------------------------------------------------------------------


@get("/runs")
async def runs_page(request: Request[Any, Any, Any]) -> Template:
    caller = caller_of(request)
    given = {name: (request.query_params.get(name) or "").strip() for name in FILTERS}
    cursor = request.query_params.get("cursor")
    try:
        query = runs_query(**{k: v or None for k, v in given.items()}, cursor=cursor, limit=50)
    except InvalidQuery as exc:
        return _page(
            request, "runs.html", caller, 400, page=None, given=given, errors=exc.field_errors
        )
    with answering():
        page = await run_read(_services(request), list_runs(query))
    more = None
    if page.next_cursor:
        more = {**{k: v for k, v in given.items() if v}, "cursor": page.next_cursor}
    return _page(request, "runs.html", caller, page=page, given=given, errors={}, more=more)


@get("/runs/{run_id:path}")
async def run_page(request: Request[Any, Any, Any], run_id: str) -> Response[str]:
    caller = caller_of(request)
    # A path parameter: run ids may hold "/" (the links quote it as %2F, which the
    # router decodes before matching).
    with answering():
        detail = await run_read(_services(request), run_detail(run_id.removeprefix("/")))
    # Off the event loop the ingest endpoints share: a run of thousands of steps takes a
    # noticeable fraction of a second to draw and render.
    html = await anyio.to_thread.run_sync(_render_run, caller, detail)
    return Response(html, media_type=MediaType.HTML)


def _render_run(caller: Caller, detail: Any) -> str:
    return RUN_TEMPLATE.render(_context(caller, detail=detail, chart=waterfall(detail.steps)))


def _artifacts(request: Request[Any, Any, Any]) -> Any:
    """The artifact service (built on first use, in a worker thread: an S3 store takes
    a while to set up)."""
    state = UiState.of(request)
    with state.lock:
        if state.artifacts is None:
            from sdk.artifacts import ArtifactService  # only the download needs it

            state.artifacts = ArtifactService.from_settings(_services(request).settings)
        return state.artifacts


@get("/artifacts/{artifact_id:str}/{version_text:str}")
async def artifact_content(
    request: Request[Any, Any, Any], artifact_id: str, version_text: str
) -> Stream:
    """The whole content, streamed and sha256-verified as it is read; always as an
    attachment (an HTML artifact must never render as one of our pages)."""
    caller_of(request)
    # Parsed here, not by the router: a version that is no number is this UI's 404 page.
    if not (version_text.isascii() and version_text.isdigit() and len(version_text) < 10):
        raise NotFound(f"no version {version_text!r}: versions are numbers from 1")
    version = int(version_text)
    service = await anyio.to_thread.run_sync(_artifacts, request)
    meta = await anyio.to_thread.run_sync(_artifact_meta, service, artifact_id, version)
    with artifact_errors():
        reader = await anyio.to_thread.run_sync(service.open_content, artifact_id, version)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await anyio.to_thread.run_sync(reader.read, CHUNK):
                yield chunk
        finally:
            await anyio.to_thread.run_sync(reader.close)

    filename = f"{artifact_id}-v{version}"
    return Stream(
        chunks(),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(meta.size_bytes),
            "X-Artifact-Mime-Type": meta.mime_type,
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


def _artifact_meta(service: Any, artifact_id: str, version: int) -> Any:
    with artifact_errors():
        return service.read_artifact(artifact_id, version)


@contextmanager
def artifact_errors() -> Iterator[None]:
    """The artifact package's refusals as pages: 404 for what is not there, 503 for a
    database or store that cannot answer now."""
    from sdk.artifacts.errors import (
        ArtifactError,
        ArtifactNotFound,
        DatabaseUnavailable,
        InvalidArtifact,
        StorageUnavailable,
    )

    try:
        yield
    except (ArtifactNotFound, InvalidArtifact) as exc:
        raise NotFound(str(exc)) from exc
    except (DatabaseUnavailable, StorageUnavailable) as exc:
        raise StoreUnavailable(f"artifacts unavailable: {exc}") from exc
    except ArtifactError as exc:
        raise StoreUnavailable(f"the artifact could not be read: {exc}") from exc


# --- usage ------------------------------------------------------------------------------


@get("/usage")
async def usage_page(request: Request[Any, Any, Any]) -> Template:
    caller = caller_of(request)
    group = request.query_params.get("group") or "model"
    metric = request.query_params.get("metric") or "cost"
    if group not in GROUPINGS:
        group = "model"
    if metric not in ("cost", "tokens"):
        metric = "cost"
    today = datetime.now(UTC).date()
    days = last_days(today, USAGE_DAYS)
    ctx: dict[str, Any] = {"group": group, "metric": metric, "groupings": GROUPINGS, "days": days}
    try:
        with answering():
            query = usage_query(
                from_day=days[0],
                to_day=today,
                group_by=("day", group),
                today=today,
                max_live_days=_services(request).settings.read_max_live_days,
            )
            report = await run_read(_services(request), usage_report(query))
    except ApiError as exc:
        if exc.status_code != 422:
            raise
        problems = [e["msg"] for e in exc.errors or []] or [exc.detail]
        return _page(request, "usage.html", caller, 422, report=None, problems=problems, **ctx)
    values: dict[tuple[date, str], Decimal | int] = {}
    by_group: dict[str, dict[str, Any]] = {}
    for g in report.groups:
        name = str(g.key.get(group) if g.key.get(group) is not None else "(none)")
        f = g.figures
        day_key = (g.key["day"], name)
        values[day_key] = values.get(day_key, 0) + (
            f.cost_usd if metric == "cost" else f.tokens_in + f.tokens_out
        )
        row = by_group.setdefault(
            name,
            {
                "name": name,
                "cost": Decimal(0),
                "tokens_in": 0,
                "tokens_out": 0,
                "calls": 0,
                "unknown": 0,
                "steps": 0,
            },
        )
        row["cost"] += f.cost_usd
        row["tokens_in"] += f.tokens_in
        row["tokens_out"] += f.tokens_out
        row["calls"] += f.calls
        row["steps"] += f.steps
        # None: not recorded for some of the group's days; it stays so (never "0 unknown").
        if row["unknown"] is not None:
            row["unknown"] = (
                None if f.cost_unknown_calls is None else row["unknown"] + f.cost_unknown_calls
            )
    chart = usage_bars(days, values, unit="usd" if metric == "cost" else "tokens")
    if metric == "cost":
        rows = sorted(
            by_group.values(), key=lambda r: (-r["cost"], -(r["unknown"] or 0), r["name"])
        )
    else:
        rows = sorted(
            by_group.values(), key=lambda r: (-(r["tokens_in"] + r["tokens_out"]), r["name"])
        )
    return _page(
        request, "usage.html", caller, report=report, chart=chart, rows=rows, problems=[], **ctx
    )


# --- static -----------------------------------------------------------------------------


@get("/static/{name:str}", cache_control=None)
async def static(name: str) -> Response[bytes]:
    media = STATIC_FILES.get(name)
    if media is None:  # a fixed list: no path from the request ever reaches the disk
        raise NotFound(f"no UI file {name!r}")
    return Response(
        (STATIC / name).read_bytes(),
        media_type=media,
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/{rest:path}")
async def no_such_page(rest: str) -> None:
    """Any other /ui/ path: a page saying so, with the UI's headers (not the API's JSON)."""
    raise NotFound(f"there is no UI page {rest!r}: see the Runs and Usage pages")


# --- errors -----------------------------------------------------------------------------


def _to_login(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    if request.method == "GET" and exc.message is None:
        return security_headers(Redirect(login_url(exc.next_path), status_code=303))
    page = _page(
        request,
        "login.html",
        None,
        401,
        next_path=safe_next(exc.next_path),
        message=exc.message or "log in to see this page",
    )
    return security_headers(page)


def _error_page(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    page = _page(
        request, "error.html", None, exc.status_code, status=exc.status_code, detail=exc.detail
    )
    page.headers.update(exc.headers)
    return security_headers(page)


def _http_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals under /ui (405, 413, a path that does not convert) as
    pages with the UI's headers, not the API's JSON."""
    error = ApiError(str(exc.detail))
    error.status_code = exc.status_code
    error.headers = dict(exc.headers or {})
    return _error_page(request, error)


UI_ROUTER = Router(
    path="/ui",
    route_handlers=[
        home,
        login_form,
        login,
        logout,
        runs_page,
        run_page,
        artifact_content,
        usage_page,
        static,
        no_such_page,
    ],
    after_request=security_headers,
    exception_handlers={
        LoginRequired: _to_login,
        ApiError: _error_page,
        HTTPException: _http_page,
    },
    include_in_schema=False,
)
