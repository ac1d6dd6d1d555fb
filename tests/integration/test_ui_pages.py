"""The web UI over plain HTTP against a real API and Postgres: who gets in, what every
answer carries (CSP, no caching), errors as pages, escaping, downloads as attachments.
(The same pages in a real browser: test_ui_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from tests.integration.read_support import READ, READ_KEY, event, post, read_server, step
from tests.support.servers import TEST_API_KEYS, ApiServer, run_api

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RUN = "ui-run/1"  # a "/" in a run id: the links must still reach it


@pytest.fixture(scope="module")
def api(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("ui") / "api.log"
    with read_server(migrated_db_url, log, INGEST_AUTH_FAILURE_LIMIT="50") as server:
        now = datetime.now(UTC)
        ids = {"run_id": RUN, "workflow_name": "ui-flow", "item_id": "item-<1>"}
        post(
            server,
            [
                event("workflow.run_started", now - timedelta(seconds=9), **ids),
                step(now - timedelta(seconds=8), node=HOSTILE, step=1, cost=0.5, **ids),
                step(now - timedelta(seconds=7), node="plan", step=2, cost=None, **ids),
                event(
                    "workflow.item_state_changed",
                    now - timedelta(seconds=6),
                    payload={"from_state": HOSTILE, "to_state": "done"},
                    **ids,
                ),
            ],
        )
        yield server


@pytest.fixture(scope="module")
def draft(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    # Inline content lives in Postgres: the API reads it whatever its blob store is.
    service = ArtifactService(engine=engine, store=FileStore(tmp_path_factory.mktemp("blobs")))
    content = f"# Draft\n\n{HOSTILE}\n".encode()
    written = service.write_artifact(type="draft", content=content, mime_type="text/html")
    service.link(written.artifact_id, written.version, link_type="output", run_id=RUN)
    return written.artifact_id, content


def login(api: ApiServer, key: str = READ_KEY) -> httpx.Response:
    return httpx.post(f"{api.base_url}/ui/login", data={"key": key, "next": "/ui/usage"})


def cookie_of(response: httpx.Response) -> dict[str, str]:
    value = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    return {"wdp_ui_session": value}


def test_every_page_answers_with_the_csp_and_escapes_event_data(
    api: ApiServer, draft: tuple[str, bytes]
) -> None:
    for path in ("/ui/runs", "/ui/runs/ui-run%2F1", "/ui/usage", "/ui/login"):
        response = httpx.get(f"{api.base_url}{path}", headers=READ)
        assert response.status_code == 200, (path, response.text)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text
        assert "<img src=x" not in response.text
    page = httpx.get(f"{api.base_url}/ui/runs/ui-run%2F1", headers=READ).text
    # the bar's label and title, the table row, the state change, the artifact preview
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 5
    assert "item-&lt;1&gt;" in page
    assert f"/ui/artifacts/{draft[0]}/1" in page


def test_without_credentials_pages_redirect_to_login_and_keep_the_destination(
    api: ApiServer,
) -> None:
    response = httpx.get(f"{api.base_url}/ui/runs?status=failed")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/runs%3Fstatus%3Dfailed"
    assert "content-security-policy" in response.headers


def test_login_sets_a_strict_httponly_cookie_and_goes_back(api: ApiServer) -> None:
    response = login(api)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/usage"
    set_cookie = response.headers["set-cookie"]
    assert re.search(r"HttpOnly", set_cookie)
    assert "SameSite=Strict" in set_cookie
    assert "Path=/ui" in set_cookie
    assert "Secure" not in set_cookie
    assert READ_KEY not in set_cookie
    page = httpx.get(f"{api.base_url}/ui/runs", cookies=cookie_of(response))
    assert page.status_code == 200
    assert "Log out" in page.text


def test_an_ingest_key_is_refused_at_login_and_as_a_header(api: ApiServer) -> None:
    response = login(api, TEST_API_KEYS[0])
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert "READ_API_KEYS" in response.text
    assert TEST_API_KEYS[0] not in response.text
    header = httpx.get(
        f"{api.base_url}/ui/runs", headers={"Authorization": f"Bearer {TEST_API_KEYS[0]}"}
    )
    assert header.status_code == 403
    assert header.headers["content-type"].startswith("text/html")
    wrong = httpx.get(f"{api.base_url}/ui/runs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.text


def test_logout_needs_the_pages_csrf_token(api: ApiServer) -> None:
    cookies = cookie_of(login(api))
    page = httpx.get(f"{api.base_url}/ui/runs", cookies=cookies).text
    (token,) = re.findall(r'name="csrf" value="([^"]+)"', page)
    forged = httpx.post(f"{api.base_url}/ui/logout", data={"csrf": "guess"}, cookies=cookies)
    assert forged.status_code == 401
    assert "set-cookie" not in forged.headers
    done = httpx.post(f"{api.base_url}/ui/logout", data={"csrf": token}, cookies=cookies)
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/login"
    assert "Max-Age=0" in done.headers["set-cookie"]


def test_bad_filters_and_unknown_runs_are_pages_that_say_what_is_wrong(api: ApiServer) -> None:
    bad = httpx.get(f"{api.base_url}/ui/runs", params={"since": "yesterday-ish"}, headers=READ)
    assert bad.status_code == 400
    assert "Since: must be an RFC 3339 date-time" in bad.text
    assert 'value="yesterday-ish"' in bad.text  # kept in the form, escaped
    missing = httpx.get(f"{api.base_url}/ui/runs/no-such-run", headers=READ)
    assert missing.status_code == 404
    assert "no run &#39;no-such-run&#39;" in missing.text
    assert missing.headers["content-type"].startswith("text/html")


def test_filters_narrow_the_list(api: ApiServer) -> None:
    runs = f"{api.base_url}/ui/runs"
    matching = httpx.get(runs, params={"workflow_name": "ui-flow"}, headers=READ)
    assert "ui-run/1" in matching.text
    other = httpx.get(runs, params={"workflow_name": "other"}, headers=READ)
    assert "ui-run/1" not in other.text
    assert "No runs match" in other.text


def test_downloads_are_attachments_with_the_whole_content(
    api: ApiServer, draft: tuple[str, bytes]
) -> None:
    artifact_id, content = draft
    url = f"{api.base_url}/ui/artifacts/{artifact_id}/1"
    response = httpx.get(url, headers=READ)
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-artifact-mime-type"] == "text/html"
    assert httpx.get(url).status_code == 303  # the same key check as the pages
    missing = httpx.get(f"{api.base_url}/ui/artifacts/{artifact_id}/9", headers=READ)
    assert missing.status_code == 404


def test_the_stylesheet_is_served_and_nothing_else_from_disk(api: ApiServer) -> None:
    css = httpx.get(f"{api.base_url}/ui/static/ui.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    for name in ("..%2Fpages.py", "pages.py", "ui.css.bak"):
        assert httpx.get(f"{api.base_url}/ui/static/{name}").status_code == 404


def test_a_session_ends_when_its_key_is_removed(
    migrated_db_url: str, tmp_path: Path, api: ApiServer
) -> None:
    cookies = cookie_of(login(api))
    env = {"READ_API_KEYS": "another-read-key"}
    with run_api(migrated_db_url, tmp_path / "api.log", extra_env=env) as other:
        response = httpx.get(f"{other.base_url}/ui/runs", cookies=cookies)
    assert response.status_code == 401
    assert "your session has ended" in response.text


def test_open_reads_need_no_login(migrated_db_url: str, tmp_path: Path) -> None:
    env = {"INGEST_AUTH_DISABLED": "true"}
    with run_api(migrated_db_url, tmp_path / "api.log", extra_env=env) as server:
        response = httpx.get(f"{server.base_url}/ui/runs")
    assert response.status_code == 200
    assert "Log out" not in response.text


def test_forms_posted_from_another_site_are_refused(api: ApiServer) -> None:
    # A login CSRF would log the visitor in with the attacker's key.
    response = httpx.post(
        f"{api.base_url}/ui/login",
        data={"key": READ_KEY, "next": "/ui/runs"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    own = httpx.post(
        f"{api.base_url}/ui/login",
        data={"key": READ_KEY, "next": "/ui/runs"},
        headers={"Origin": api.base_url},
    )
    assert own.status_code == 303


def test_an_unknown_ui_path_is_a_page_with_the_uis_headers(api: ApiServer) -> None:
    response = httpx.get(f"{api.base_url}/ui/nowhere/<b>", headers=READ)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers
    assert "nowhere/&lt;b&gt;" in response.text


def test_crafted_cookies_and_bodies_are_pages_not_server_errors(api: ApiServer) -> None:
    key_id = cookie_of(login(api))["wdp_ui_session"].split(".")[3]
    for crafted in (f"v1.1796277371.abc.{key_id}.é", f"v1.²³.abc.{key_id}.x", "v1.%00"):
        response = httpx.get(
            f"{api.base_url}/ui/runs",
            headers=[(b"cookie", f"wdp_ui_session={crafted}".encode())],
        )
        assert response.status_code == 401, (crafted, response.text)
        assert "your session has ended" in response.text
    login_url = f"{api.base_url}/ui/login"
    multipart = httpx.post(login_url, files={"key": (None, "\xed")})
    assert multipart.status_code == 400
    assert "application/x-www-form-urlencoded" in multipart.text
    not_utf8 = httpx.post(
        login_url,
        content=b"key=%ED%A0%80\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    assert "content-security-policy" in not_utf8.headers
    not_a_number = httpx.get(f"{api.base_url}/ui/artifacts/01ABC/abc", headers=READ)
    assert not_a_number.status_code in (400, 404)
    assert "content-security-policy" in not_a_number.headers


def test_a_proxys_basic_credentials_do_not_hide_the_session(api: ApiServer) -> None:
    cookies = cookie_of(login(api))
    response = httpx.get(
        f"{api.base_url}/ui/runs", cookies=cookies, headers={"Authorization": "Basic dTpw"}
    )
    assert response.status_code == 200


def test_older_pages_keep_the_filters_and_repeat_no_run(api: ApiServer) -> None:
    start = datetime.now(UTC) - timedelta(minutes=30)
    post(
        api,
        [
            event(
                "workflow.run_started",
                start + timedelta(seconds=i),
                run_id=f"page-{i:03d}",
                workflow_name="paged & flow",
            )
            for i in range(55)
        ],
    )
    seen: list[str] = []
    url: str | None = f"{api.base_url}/ui/runs?workflow_name=paged+%26+flow"
    while url:
        page = httpx.get(url, headers=READ).text
        seen += re.findall(r">(page-\d{3})</a>", page)
        more = re.search(r'rel="next" href="([^"]+)"', page)
        url = f"{api.base_url}{more.group(1).replace('&amp;', '&')}" if more else None
    assert seen == [f"page-{i:03d}" for i in reversed(range(55))]
    since = (start + timedelta(seconds=50)).isoformat()
    recent = httpx.get(
        f"{api.base_url}/ui/runs",
        params={"workflow_name": "paged & flow", "since": since},
        headers=READ,
    ).text
    assert re.findall(r">(page-\d{3})</a>", recent) == [f"page-{i:03d}" for i in range(54, 49, -1)]
