"""Acceptance of the web UI (/ui) in a real headless Chromium, against a real stack.

One ``wdp api`` for the module (a read key, the test ingest keys, a file artifact store
it shares with this process), fed by the example orchestrator (items 1-3: item 1 has a
parallel research fan-out and is approved on its second draft) and by one hostile run
whose names, states, payloads and artifact preview are markup. One Chromium for the
module, a fresh context (no cookies) per test.

The pages load no script, so a dialog could only come from injected markup. The XSS test
runs with the page's CSP bypassed, so that an injection would execute (and be caught)
rather than be blocked by the CSP; that the CSP is sent is checked apart.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import httpx
import psycopg
import pytest

from examples.orchestrator.graph import WORKFLOW_NAME
from examples.orchestrator.run import ItemResult, RunSummary, run_items
from sdk.artifacts import ArtifactService
from sdk.settings import WdpSettings
from sdk.telemetry.client import TelemetryClient
from tests.integration.read_support import READ, READ_KEY, event, post, read_server, step
from tests.support.servers import TEST_API_KEYS, ApiServer
from tests.support.ui_browser import (
    CHROMIUM,
    SESSION_COOKIE,
    VIEWPORT,
    Watched,
    chromium,
    log_in,
    png_size,
    watch,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytest.importorskip("playwright.sync_api", reason="the dev extra's playwright is missing")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing (apt-get install -y chromium; no browser is downloaded)",
    ),
]

INGEST_KEY = TEST_API_KEYS[0]
# Item 1 of the example: triage, plan, three research branches, then draft + review twice.
ITEM_1_NODES = {"triage": 1, "plan": 1, "research": 3, "draft": 2, "review": 2}
INLINE_MAX = 2048  # the drafts (3-10 KB) go to the file store, the hostile preview inline

# --- the hostile run ---------------------------------------------------------------------

SCRIPT = '<script>alert("script")</script>'
IMG = '<img src=x onerror=alert("img")>'
SVG = '"><svg onload=alert("svg")>'
TITLE = '</title><script>alert("title")</script>'  # out of the waterfall's SVG <title>
JS = 'javascript:alert("js")'
HOSTILE_NODES = [SCRIPT, IMG, SVG, TITLE, JS]

HOSTILE_RUN = "</title><img src=x onerror=alert(1)>"  # also holds a "/"
HOSTILE_ITEM = '"><svg onload=alert("item")>'
HOSTILE_WORKFLOW = 'javascript:alert("wf")//<b>wf</b>'
HOSTILE_ROLE = '<script>alert("role")</script>'
HOSTILE_MODEL = '</title><img src=x onerror=alert("model")>'
HOSTILE_ERROR = ('<img src=x onerror=alert("etype")>', '</td></tr><script>alert("emsg")</script>')
HOSTILE_FROM = '<img src=x onerror=alert("from")>'
HOSTILE_TO = '</td></tr><script>alert("to")</script>'
HOSTILE_REASON = 'javascript:alert("reason")'
HOSTILE_COMMENT = '</pre><script>alert("comment")</script>'
HOSTILE_PREVIEW = (
    '</pre><script>alert("preview")</script>\n'
    '<img src=x onerror=alert("preview")>\n'
    '"><svg onload=alert("preview")>\n'
    'javascript:alert("preview")'
)
HOSTILE_TITLE = '<img src=x onerror=alert("artifact-title")>'
HOSTILE_LINK_TYPE = '"><svg onload=alert("link")>'
HOSTILE_HTML = b'<!doctype html><script>alert("content")</script><img src=x onerror=alert(7)>'


@dataclass(frozen=True)
class Stack:
    server: ApiServer
    artifacts: ArtifactService
    demo: RunSummary
    db_url: str
    hostile_artifact: str
    shots: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def item_1(self) -> ItemResult:
        return self.demo.items[0]


def _run_the_example(server: ApiServer, artifacts: ArtifactService, spool: Path) -> RunSummary:
    client = TelemetryClient(
        endpoint=server.base_url,
        api_key=INGEST_KEY,
        spool_dir=spool,
        flush_interval_s=0.1,
        timeout_s=10.0,
    )
    try:
        summary = asyncio.run(run_items(3, artifacts=artifacts, client=client, batch="ui"))
        assert client.flush(timeout=30), client.stats()
        stats = client.stats()
        assert (stats.rejected, stats.dropped) == (0, 0), stats
    finally:
        client.shutdown(timeout=5)
    outcomes = [(i.status, i.drafts) for i in summary.items]
    assert outcomes == [("approved", 2), ("approved", 1), ("approved", 1)]
    return summary


def _post_the_hostile_run(server: ApiServer, artifacts: ArtifactService) -> str:
    t0 = datetime.now(UTC) - timedelta(seconds=10)
    ids = {
        "run_id": HOSTILE_RUN,
        "item_id": HOSTILE_ITEM,
        "workflow_name": HOSTILE_WORKFLOW,
        "agent_role": HOSTILE_ROLE,
    }
    steps = [
        step(
            t0 + timedelta(seconds=1 + i),
            node=node,
            step=i + 1,
            cost=0.01,
            duration_ms=800.0,
            model=HOSTILE_MODEL if i == 0 else "model-a",
            status="error" if i == 1 else "ok",
            **ids,
        )
        for i, node in enumerate(HOSTILE_NODES)
    ]
    steps[1]["payload"]["error_type"], steps[1]["payload"]["error_message"] = HOSTILE_ERROR
    post(
        server,
        [
            event("workflow.run_started", t0, payload={"trigger": SCRIPT}, **ids),
            *steps,
            event(
                "workflow.item_state_changed",
                t0 + timedelta(seconds=2),
                payload={
                    "from_state": HOSTILE_FROM,
                    "to_state": HOSTILE_TO,
                    "reason": HOSTILE_REASON,
                    "node": IMG,
                },
                **ids,
            ),
            event(
                "learning.feedback_received",
                t0 + timedelta(seconds=3),
                payload={
                    "target_type": "run",
                    "target_id": HOSTILE_RUN,
                    "label": SVG,
                    "comment": HOSTILE_COMMENT,
                },
                **ids,
            ),
            event(
                "workflow.run_completed",
                t0 + timedelta(seconds=7),
                payload={"status": "failed", "duration_ms": 7000.0, "steps": 5},
                **ids,
            ),
        ],
    )
    written = artifacts.write_artifact(
        type="report",
        content=HOSTILE_HTML,
        mime_type="text/html",
        preview_text=HOSTILE_PREVIEW,
        extracted_fields={"title": HOSTILE_TITLE},
        owner_run_id=HOSTILE_RUN,
    )
    artifacts.link(
        written.artifact_id, 1, link_type=HOSTILE_LINK_TYPE, run_id=HOSTILE_RUN, item_id=IMG
    )
    return written.artifact_id


@pytest.fixture(scope="module")
def stack(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("ui-stack")
    store = base / "artifact-store"
    env = {
        "ARTIFACT_STORE": "file",
        "ARTIFACT_DIR": str(store),
        "ARTIFACT_INLINE_MAX_BYTES": str(INLINE_MAX),
    }
    settings = WdpSettings(
        database_url=migrated_db_url,
        artifact_store="file",
        artifact_dir=store,
        artifact_inline_max_bytes=INLINE_MAX,
    )
    with (
        read_server(migrated_db_url, base / "api.log", **env) as server,
        ArtifactService.from_settings(settings) as artifacts,
    ):
        demo = _run_the_example(server, artifacts, base / "spool")
        hostile = _post_the_hostile_run(server, artifacts)
        shots = tmp_path_factory.mktemp("ui-screenshots")
        yield Stack(server, artifacts, demo, migrated_db_url, hostile, shots)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    # After the stack: the example runs on asyncio.run, never inside Playwright's loop.
    with chromium() as b:
        yield b


@dataclass
class Tab:
    context: BrowserContext
    page: Page
    seen: Watched


@contextmanager
def _tab(browser: Browser, stack: Stack, **options: Any) -> Iterator[Tab]:
    context = browser.new_context(base_url=stack.base_url, viewport=VIEWPORT, **options)
    context.set_default_timeout(10_000)
    seen = watch(context)
    page = context.new_page()
    try:
        yield Tab(context, page, seen)
    finally:
        context.close()
    # No page of the UI ever opens a dialog, throws, or logs (a CSP report is a log).
    assert seen.clean(), seen


@pytest.fixture
def tab(browser: Browser, stack: Stack) -> Iterator[Tab]:
    """A fresh browser context (no cookies) and its page, not logged in."""
    with _tab(browser, stack) as fresh:
        yield fresh


@pytest.fixture
def page(tab: Tab) -> Page:
    """A page logged in through the form with the read key."""
    log_in(tab.page, READ_KEY)
    assert tab.page.url.endswith("/ui/runs"), tab.page.url
    return tab.page


def run_path(run_id: str) -> str:
    return f"/ui/runs/{quote(run_id, safe='')}"


def cell_texts(page: Page, selector: str) -> list[str]:
    """The rendered text of every element ``selector`` finds (HTML elements)."""
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def table_rows(page: Page, selector: str) -> list[list[str]]:
    """The cells' text of every row ``selector`` finds."""
    rows: list[list[str]] = page.locator(selector).evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return rows


def svg_texts(page: Page, selector: str) -> list[str]:
    """The text of every SVG element ``selector`` finds (SVG has no innerText)."""
    return [t.strip() for t in page.locator(selector).all_text_contents()]


# --- 1. the tour: log in, a run, its draft, the list's filters, usage --------------------


def test_log_in_and_open_item_1s_run_its_steps_and_its_draft(page: Page, stack: Stack) -> None:
    item = stack.item_1
    # From the list (where the login form sent the browser), item 1's run.
    page.get_by_role("link", name=item.run_id).click()
    page.wait_for_load_state()
    assert page.url == stack.base_url + run_path(item.run_id)
    assert page.locator("h1").inner_text() == f"Run {item.run_id}"
    facts = page.locator("dl.facts").inner_text()
    assert WORKFLOW_NAME in facts
    assert item.item_id in facts
    assert "succeeded" in facts

    # The waterfall: a bar per node execution, labelled, the research branches side by side.
    bars = page.locator("figure.waterfall svg g.bar")
    assert bars.count() == sum(ITEM_1_NODES.values())
    labels = [t.split(" ∥")[0] for t in svg_texts(page, "figure.waterfall svg text.label")]
    assert Counter(labels) == ITEM_1_NODES
    boxes = [page.locator("figure.waterfall svg rect").nth(i).bounding_box() for i in range(9)]
    assert all(b is not None and b["width"] > 0 and b["height"] > 0 for b in boxes)
    research = [b for b, name in zip(boxes, labels, strict=True) if name == "research"]
    assert len(research) == 3
    assert all(b is not None for b in research)
    # Each branch starts before the others end: drawn as overlapping in time.
    spans = [(b["x"], b["x"] + b["width"]) for b in research if b is not None]
    assert all(s[0] < o[1] and o[0] < s[1] for s in spans for o in spans if s is not o), spans

    # The steps table: the same nine, in the same (start) order, all ok.
    rows = page.locator("table.steps tbody tr")
    assert rows.count() == 9
    nodes = [t.split("∥")[0].strip() for t in cell_texts(page, "table.steps tbody td:nth-child(1)")]
    assert nodes == labels
    assert nodes[:2] == ["triage", "plan"]
    assert nodes[-1] == "review"
    assert set(cell_texts(page, "table.steps tbody td:nth-child(5)")) == {"ok"}

    # The rejected draft and the second one: state changes and evaluations.
    states = cell_texts(page, "table.states tbody td:nth-child(4)")
    assert states == ["triaged", "planned", "researched", "drafted", "needs_changes", "drafted",
                      "approved"]  # fmt: skip
    learning = cell_texts(page, "table.learning tbody td:nth-child(2)")
    assert learning.count("learning.evaluation_scored") == 2

    # Both versions of the draft are linked; each shows its preview and downloads whole.
    artifacts = page.locator("li.artifact")
    assert artifacts.count() == 2
    versions = []
    for i in range(2):
        entry = artifacts.nth(i)
        href = entry.locator("a.download").get_attribute("href")
        assert href is not None
        match = re.fullmatch(r"/ui/artifacts/([0-9A-Z]{26})/(\d+)", href)
        assert match, href
        artifact_id, version = match[1], int(match[2])
        assert artifact_id == item.artifact_id
        versions.append(version)
        meta = stack.artifacts.read_artifact(artifact_id, version)
        assert meta.storage_key is not None  # in the file store, read by the API's process
        preview = entry.locator("pre.preview")
        assert preview.is_visible()
        assert preview.text_content() == meta.preview_text
        assert (meta.preview_text or "").startswith("# ")
        response = page.request.get(href)  # with the page's session cookie
        assert response.status == 200
        content = stack.artifacts.read_content(artifact_id, version)
        assert response.body() == content
        assert len(content) == meta.size_bytes > INLINE_MAX
        assert response.headers["content-disposition"].startswith("attachment")
    assert sorted(versions) == [1, 2]


def test_filtering_the_runs_changes_the_list(page: Page, stack: Stack) -> None:
    def listed() -> list[str]:
        return cell_texts(page, "table.runs tbody td:nth-child(1)")

    assert sorted(listed()) == sorted([*stack.demo.run_ids, HOSTILE_RUN])

    page.get_by_label("Item").fill(stack.item_1.item_id)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert f"item_id={stack.item_1.item_id}" in page.url
    assert listed() == [stack.item_1.run_id]
    assert page.get_by_label("Item").input_value() == stack.item_1.item_id

    page.get_by_label("Item").fill("")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert "status=failed" in page.url
    assert listed() == [HOSTILE_RUN]

    page.get_by_label("Status").select_option("succeeded")
    page.get_by_label("Workflow").fill(WORKFLOW_NAME)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert sorted(listed()) == sorted(stack.demo.run_ids)

    # A day after every run: nothing; a day that is not one: said so, next to the field.
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    page.get_by_label("Since").fill(tomorrow)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert page.locator("p.empty").inner_text() == "No runs match."
    assert page.locator("table.runs").count() == 0
    page.get_by_label("Since").fill("yesterday-ish")
    with page.expect_response(lambda r: "/ui/runs?" in r.url) as answer:
        page.get_by_role("button", name="Filter").click()
    assert answer.value.status == 400
    (problem,) = cell_texts(page, "[role=alert]")
    assert problem.startswith("Since: must be an RFC 3339 date-time"), problem
    assert page.get_by_label("Since").input_value() == "yesterday-ish"  # kept to be fixed

    # "clear", then a run's link opens its page (a run id with "/" and markup in it).
    page.get_by_role("link", name="clear").click()
    page.wait_for_load_state()
    assert len(listed()) == 4
    page.locator("table.runs a", has_text="</title>").click()
    page.wait_for_load_state()
    assert page.locator("h1 code").inner_text() == HOSTILE_RUN


def test_usage_shows_the_chart_and_the_table(page: Page, stack: Stack) -> None:
    page.get_by_role("link", name="Usage").click()
    page.wait_for_load_state()
    assert page.url.endswith("/ui/usage")
    assert page.locator("h1").inner_text() == "Usage, last 30 days"
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute(
            "SELECT count(*), sum((payload->>'tokens_in')::bigint), "
            "sum((payload->>'tokens_out')::bigint) FROM telemetry.workflow_events "
            "WHERE event_name = 'workflow.step_completed'"
        ).fetchone()
    assert row is not None
    steps, tokens_in, tokens_out = row
    with psycopg.connect(stack.db_url) as conn:
        days = {
            d.isoformat()
            for (d,) in conn.execute(
                "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM telemetry.workflow_events"
            )
        }
    facts = page.locator("dl.facts").inner_text()
    assert f"{tokens_in:,} in / {tokens_out:,} out" in facts, facts

    for metric in ("cost", "tokens"):
        page.locator("select[name=metric]").select_option(metric)
        page.locator("select[name=group]").select_option("node")
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        assert f"metric={metric}" in page.url
        assert "group=node" in page.url
        bars = page.locator("figure.chart svg[role=img] rect")
        heights = [
            (bars.nth(i).bounding_box() or {"height": 0})["height"] for i in range(bars.count())
        ]
        assert all(h > 0 for h in heights), heights
        table = {r[0]: r[1:] for r in table_rows(page, "table.usage tbody tr")}
        assert set(ITEM_1_NODES) | set(HOSTILE_NODES) == set(table)
        # The table adds up to every step and token stored.
        assert sum(int(v[0].replace(",", "")) for v in table.values()) == steps
        assert sum(int(v[2].replace(",", "")) for v in table.values()) == tokens_in
        assert sum(int(v[3].replace(",", "")) for v in table.values()) == tokens_out

        # What is drawn: the seven largest series (by the table) of their own, the rest as
        # "other"; a series of no known cost (every call unknown) is never drawn as $0.
        size = {
            name: known_cost(v[4])
            if metric == "cost"
            else int(v[2].replace(",", "")) + int(v[3].replace(",", ""))
            for name, v in table.items()
        }
        ranked = [n for n in sorted(size, key=lambda n: (-size[n], n)) if size[n] > 0]
        assert ranked, size
        titles = page.locator("figure.chart svg[role=img] rect title").all_text_contents()
        drawn = {t.split(" · ")[0] for t in titles}
        assert drawn == set(ranked[:7]) | ({"other"} if len(ranked) > 7 else set()), titles
        assert {t.split(" · ")[1] for t in titles} == days, titles
        if len(days) == 1:  # one bar: a segment per series drawn
            assert bars.count() == len(drawn)
        legend = cell_texts(page, "ul.legend li")
        # Only what is drawn: a series of no known cost has no bar and no legend entry.
        if len(ranked) > 7:
            assert legend == [*ranked[:7], f"other ({len(ranked) - 7})"], legend
        else:
            assert legend == ranked, legend


def known_cost(cell: str) -> Decimal:
    """The known part of a cost cell: "unknown" is none, "$x + unknown" is x."""
    if cell == "unknown":
        return Decimal(0)
    return Decimal(cell.removesuffix(" + unknown").lstrip("$").replace(",", ""))


# --- 2. screenshots ------------------------------------------------------------------------


def test_screenshots_of_the_runs_the_run_and_usage(page: Page, stack: Stack) -> None:
    paths = {
        "runs.png": "/ui/runs",
        "run.png": run_path(stack.item_1.run_id),
        "usage.png": "/ui/usage?group=node&metric=tokens",
    }
    for name, path in paths.items():
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, path
        assert page.locator("script").count() == 0
        out = stack.shots / name
        page.screenshot(path=str(out), full_page=True)
        print(f"screenshot (test artefact): {out}")
        width, height = png_size(out)
        assert width == VIEWPORT["width"]
        assert height >= 300
        assert out.stat().st_size > 20_000, (out, out.stat().st_size)  # not a blank page
    # The run page is long (9 steps, 7 state changes, 2 previews): taller than the window.
    assert png_size(stack.shots / "run.png")[1] > VIEWPORT["height"]


# --- 3. hostile input is text, never markup ------------------------------------------------


def _assert_nothing_injected(page: Page, *, svgs: int) -> None:
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.locator("b").count() == 0
    assert page.locator("svg").count() == svgs
    assert page.locator("svg [onload], svg[onload]").count() == 0
    handlers = page.evaluate(
        """() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
             .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))"""
    )
    assert handlers == []
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('[href], [src], [action]')].map("
        "e => e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action'))"
    )
    assert hrefs
    assert all(h.startswith("/ui/") for h in hrefs), hrefs


def test_hostile_names_states_and_previews_are_shown_as_text(
    browser: Browser, stack: Stack
) -> None:
    # The CSP bypassed: markup that got through would run here, not just be blocked.
    with _tab(browser, stack, bypass_csp=True) as tab:
        page = tab.page
        log_in(page, READ_KEY, run_path(HOSTILE_RUN))
        assert unquote(page.url) == f"{stack.base_url}/ui/runs/{HOSTILE_RUN}"
        assert page.title() == f"Run {HOSTILE_RUN} · wdp"
        assert page.locator("h1 code").inner_text() == HOSTILE_RUN
        facts = page.locator("dl.facts").inner_text()
        assert HOSTILE_WORKFLOW in facts
        assert HOSTILE_ITEM in facts
        assert "failed" in facts

        # Node names: in the table, in the bars' labels and in their SVG <title>s.
        assert cell_texts(page, "table.steps tbody td:nth-child(1)") == HOSTILE_NODES
        for node in HOSTILE_NODES:
            assert page.locator("table.steps td").get_by_text(node, exact=True).is_visible()
        labels = page.locator("figure.waterfall svg text.label").all_text_contents()
        # Jinja's truncate(32, killwords): cut to 29 + "..." beyond its leeway of 5.
        assert labels == [n[:29] + "..." if len(n) > 37 else n for n in HOSTILE_NODES]
        assert labels[3] == TITLE[:29] + "..."
        titles = page.locator("figure.waterfall svg title").all_text_contents()
        assert [t.split(" · step ")[0] for t in titles] == HOSTILE_NODES
        assert set(cell_texts(page, "table.steps tbody td:nth-child(4)")) == {HOSTILE_ROLE}
        assert HOSTILE_MODEL in cell_texts(page, "table.steps tbody td:nth-child(8)")
        error = page.locator("table.steps div.err").inner_text()
        assert error == f"{HOSTILE_ERROR[0]}: {HOSTILE_ERROR[1]}"

        # The state change and the feedback.
        assert cell_texts(page, "table.states tbody td")[1:] == [
            HOSTILE_ITEM, HOSTILE_FROM, HOSTILE_TO, IMG, HOSTILE_REASON
        ]  # fmt: skip
        payload = page.locator("table.learning pre").inner_text()
        assert HOSTILE_COMMENT in payload.replace('\\"', '"')
        assert SVG.replace('"', '\\"') in payload

        # The artifact: its title, link type and preview as text; the link goes to /ui.
        entry = page.locator("li.artifact")
        assert entry.locator("strong").inner_text() == HOSTILE_TITLE
        assert HOSTILE_LINK_TYPE in entry.locator(".hint").first.inner_text()
        assert entry.locator("pre.preview").text_content() == HOSTILE_PREVIEW
        assert page.get_by_text('<img src=x onerror=alert("preview")>').is_visible()
        _assert_nothing_injected(page, svgs=1)

        # Its content is HTML: downloaded as a file, never opened as a page of ours.
        with page.expect_download() as download:
            entry.locator("a.download").click()
        assert Path(download.value.path()).read_bytes() == HOSTILE_HTML
        assert download.value.suggested_filename == f"{stack.hostile_artifact}-v1"
        response = page.request.get(f"/ui/artifacts/{stack.hostile_artifact}/1")
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["content-type"] == "application/octet-stream"
        assert "sandbox" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert unquote(page.url) == f"{stack.base_url}/ui/runs/{HOSTILE_RUN}"

        # The runs list, filtered by the hostile item: the value is put back in its field.
        page.goto("/ui/runs?" + str(httpx.QueryParams({"item_id": HOSTILE_ITEM})))
        assert page.get_by_label("Item").input_value() == HOSTILE_ITEM
        assert cell_texts(page, "table.runs tbody td:nth-child(1)") == [HOSTILE_RUN]
        row = cell_texts(page, "table.runs tbody td")
        assert row[1:3] == [HOSTILE_WORKFLOW, HOSTILE_ITEM]
        link = page.locator("table.runs tbody a").get_attribute("href")
        assert link == run_path(HOSTILE_RUN)
        _assert_nothing_injected(page, svgs=0)

        # Usage by model, role and workflow: the legend, the table and the bars' titles.
        for group, name in (("model", HOSTILE_MODEL), ("agent_role", HOSTILE_ROLE),
                            ("workflow_name", HOSTILE_WORKFLOW)):  # fmt: skip
            page.goto(f"/ui/usage?group={group}&metric=tokens")
            assert name in cell_texts(page, "table.usage tbody td:nth-child(1)")
            assert name in cell_texts(page, "ul.legend li")
            titles = page.locator("figure.chart svg rect title").all_text_contents()
            assert any(t.startswith(f"{name} · ") for t in titles), titles
            legend_swatches = page.locator("ul.legend svg").count()
            _assert_nothing_injected(page, svgs=1 + legend_swatches)

        assert tab.seen.dialogs == []


def test_every_page_has_the_csp_and_loads_no_script(tab: Tab, stack: Stack) -> None:
    page = tab.page
    log_in(page, READ_KEY)
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url))
    for path in ("/ui/runs", run_path(HOSTILE_RUN), "/ui/usage", "/ui/login", "/ui/runs/nope"):
        loads.clear()
        response = page.goto(path)
        assert response is not None
        headers = response.headers
        assert "content-security-policy" in headers, (path, response.status, headers)
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert page.locator("script").count() == 0
        assert all(u.startswith(stack.base_url + "/ui/") for u in loads), loads
        assert not [u for u in loads if u.endswith(".js")]
    # The last one was a 404: said in a page of the UI, not JSON.
    assert response.status == 404
    assert page.locator("h1").inner_text() == "404"


# --- 4. access -------------------------------------------------------------------------------


def test_without_a_key_a_page_goes_to_the_login_form(tab: Tab, stack: Stack) -> None:
    answer = httpx.get(f"{stack.base_url}/ui/runs?status=failed", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/runs%3Fstatus%3Dfailed"
    assert "content-security-policy" in answer.headers
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    download = httpx.get(f"{stack.base_url}/ui/artifacts/{stack.hostile_artifact}/1")
    assert download.status_code == 303
    assert HOSTILE_HTML not in download.content

    page = tab.page
    page.goto("/ui/runs?status=failed")
    assert page.url == f"{stack.base_url}/ui/login?next=/ui/runs%3Fstatus%3Dfailed"
    assert page.get_by_label("Read API key").is_visible()
    page.get_by_label("Read API key").fill(READ_KEY)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert page.url == f"{stack.base_url}/ui/runs?status=failed"
    assert page.get_by_label("Status").input_value() == "failed"


def test_a_wrong_or_ingest_only_key_is_refused_at_login(tab: Tab, stack: Stack) -> None:
    page = tab.page
    for key, status, says in (
        (INGEST_KEY, 403, "needs a key with the 'read' scope (READ_API_KEYS)"),
        ("not-a-key", 401, "invalid API key"),
    ):
        page.goto("/ui/login?next=/ui/usage")
        page.get_by_label("Read API key").fill(key)
        with page.expect_response(lambda r: r.url.endswith("/ui/login")) as answer:
            page.get_by_role("button", name="Log in").click()
        assert answer.value.status == status
        assert says in page.get_by_role("alert").inner_text()
        assert key not in page.content()  # the key is never echoed back
        assert tab.context.cookies() == []
        assert page.locator("input[name=next]").get_attribute("value") == "/ui/usage"
    page.goto("/ui/usage")
    assert "/ui/login?next=/ui/usage" in page.url


def test_the_session_cookie_is_httponly_and_samesite_strict(page: Page, stack: Stack) -> None:
    cookies = page.context.cookies()
    assert [c["name"] for c in cookies] == [SESSION_COOKIE]
    (cookie,) = cookies
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert READ_KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # no script of the page can read it


def test_log_out_ends_the_session(page: Page, stack: Stack) -> None:
    page.goto("/ui/usage")
    # A logout not sent by the page (no CSRF token) changes nothing.
    forged = page.request.post("/ui/logout", form={"csrf": "forged"})
    assert forged.status == 401
    page.reload()
    assert page.url.endswith("/ui/usage")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert page.url == f"{stack.base_url}/ui/login"
    assert page.context.cookies() == []
    assert page.get_by_role("button", name="Log out").count() == 0
    page.goto(run_path(stack.item_1.run_id))
    assert page.url == f"{stack.base_url}/ui/login?next={run_path(stack.item_1.run_id)}"


def test_a_read_key_in_the_header_needs_no_login(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=10) as client:
        runs = client.get("/ui/runs", headers=READ)
        assert runs.status_code == 200
        assert all(r in runs.text for r in stack.demo.run_ids)
        assert "set-cookie" not in runs.headers
        refused = client.get("/ui/runs", headers={"Authorization": f"Bearer {INGEST_KEY}"})
        assert refused.status_code == 403
        assert "read" in refused.text
        assert "text/html" in refused.headers["content-type"]


def test_login_never_sends_the_browser_off_the_ui(stack: Stack) -> None:
    for given, goes in (
        ("https://evil.example/ui/runs", "/ui/runs"),
        ("//evil.example/ui/runs", "/ui/runs"),
        ("/ui/usage?group=node", "/ui/usage?group=node"),
        ("/elsewhere", "/ui/runs"),
    ):
        answer = httpx.post(
            f"{stack.base_url}/ui/login", data={"key": READ_KEY, "next": given}, timeout=10
        )
        assert answer.status_code == 303, given
        assert answer.headers["location"] == goes, given
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/ui" in cookie
