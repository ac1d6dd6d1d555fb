"""The aggregates in the Dagster UI: three days materialised, their plots photographed.

    .venv/bin/python -m benchmarks.screenshots [--out docs/images/aggregates-plots.png]

On a fresh database (on ``$DATABASE_URL``'s server, else an embedded pgserver), it
writes three days of step events with different figures, materialises
``daily_event_aggregates`` for each into a private ``DAGSTER_HOME``, starts the real
``dagster-webserver`` on a loopback port, and photographs the asset's **Plots** view
(the Table/Plots toggle of the overview's Metadata section: Dagster 1.13 has no URL for
it) with the Debian Chromium at ``/usr/bin/chromium``, driven by Playwright (which ships
its own driver; no browser is ever downloaded). The acceptance test
``tests/integration/test_dagster_ui.py`` uses the same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness import event_row, fresh_database
from sdk.cli.launch import free_port, signal_group, wait_until_ok
from sdk.db.engine import create_engine
from sdk.db.partitions import Month, ensure_partitions
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS
from sdk.prices.book import ALWAYS, MANUAL
from sdk.prices.model import Price
from sdk.prices.repository import NewPrice, insert_prices
from sdk.telemetry.values import new_ulid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "images" / "aggregates-plots.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ASSET = "daily_event_aggregates"
STEP, RUN_DONE = "workflow.step_completed", "workflow.run_completed"
# Storage stays in DAGSTER_HOME (SQLite); nothing phones home, no first-visit dialog.
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# (workflow, node, role, model, tokens in, tokens out, USD per 1k tokens or None: no price).
# Each priced model gets a manual price row (in and out alike), so the platform computes
# its calls' cost from their tokens; the step events also carry the estimate an SDK would
# have emitted for the base tokens (the platform never uses it for steps with calls).
NODES = [
    ("triage", "classify", "triager", "gpt-4o-mini", 400, 60, 0.0006),
    ("triage", "plan", "planner", "gpt-4o", 1200, 300, 0.01),
    ("research", "search", "researcher", "gpt-4o-mini", 2500, 400, 0.0006),
    ("research", "rerank", "researcher", "local-reranker", 900, 10, None),
    ("research", "summarise", "writer", "claude-sonnet", 3000, 800, 0.009),
    ("review", "judge", "critic", "gpt-4o", 1800, 200, 0.01),
]
# Per day: runs, and a factor on durations: three visibly different days.
DAY_SHAPES = [(12, 1.0), (30, 1.6), (20, 0.7)]


PROVIDERS = {"gpt-4o-mini": "openai", "gpt-4o": "openai", "claude-sonnet": "anthropic"}


def showcase_prices() -> list[NewPrice]:
    """A manual price row per priced model of :data:`NODES` (USD per million tokens)."""
    priced = {model: price for *_, model, _, _, price in NODES if price is not None}
    return [
        NewPrice(
            model,
            Price(input=Decimal(str(p)) * 1000, output=Decimal(str(p)) * 1000),
            ALWAYS,
            MANUAL,
            exact=(model,),
            note="benchmarks.screenshots showcase",
        )
        for model, p in priced.items()
    ]


def showcase_days(today: date | None = None) -> list[date]:
    """The three days before ``today`` (UTC): partitions that exist whatever the date."""
    today = today or datetime.now(UTC).date()
    return [today - timedelta(days=n) for n in (3, 2, 1)]


def seed(url: str, days: list[date]) -> int:
    """Write each day's runs (its shape from :data:`DAY_SHAPES`); returns the events written.

    Every 6th run fails at ``judge`` (a step error and a failed run); the ``rerank`` model
    has no price, so its calls' cost is unknown. Each step is one call (event_version 2)
    at its model's provider; ``judge``'s output is half reasoning.
    """
    engine = create_engine(url)
    ensure_partitions(engine, sorted({Month.of(d) for d in days}))
    with engine.begin() as conn:
        insert_prices(conn, showcase_prices())
    engine.dispose()
    rows = []
    for day, (runs, slow) in zip(days, DAY_SHAPES, strict=False):
        start = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        for r in range(runs):
            moment = start + timedelta(minutes=25 * r)
            failed = r % 6 == 5
            for n, (wf, node, role, model, tin, tout, price) in enumerate(NODES):
                moment += timedelta(seconds=30)
                error = failed and node == "judge"
                tokens_in, tokens_out = tin + 13 * r, tout + 5 * r
                cached = (tin // 2) if node == "summarise" else 0
                call = {
                    "model": model,
                    "provider": PROVIDERS.get(model),
                    "tokens_in": tokens_in,
                    "tokens_cached_in": cached,
                    "tokens_out": tokens_out,
                    "tokens_reasoning": tokens_out // 2 if node == "judge" else 0,
                }
                payload = {
                    "node": node,
                    "step": n + 1,
                    "status": "error" if error else "ok",
                    "duration_ms": round(slow * (200 + 150 * n + 37 * (r % 9) ** 1.5), 1),
                    "model": model,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "tokens_cached_in": cached,
                    "cost_usd_est": None
                    if price is None
                    else round(price * (tin + tout) / 1000, 6),
                    "cost_unknown": price is None,
                    "calls": [{k: v for k, v in call.items() if v is not None}],
                }
                columns = {"run_id": f"run-{day}-{r}", "item_id": f"item-{r % 5}"}
                rows.append(
                    (
                        STEP,
                        moment,
                        payload,
                        columns | {"workflow_name": wf, "agent_role": role, "event_version": 2},
                    )
                )
            done = {"status": "failed" if failed else "succeeded", "duration_ms": 9000.0}
            rows.append((RUN_DONE, moment, done, {"run_id": f"run-{day}-{r}"}))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        columns_sql = ", ".join(WORKFLOW_EVENT_COLUMNS)
        with cur.copy(f"COPY telemetry.workflow_events ({columns_sql}) FROM STDIN") as copy:
            for name, moment, payload, columns in rows:
                event_id = new_ulid(int(moment.timestamp() * 1000))
                copy.write_row(event_row(event_id, name, moment, json.dumps(payload), **columns))
    return len(rows)


def prepare_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


def materialise(home: Path, url: str, days: list[date]) -> None:
    """Materialise ``days`` into ``home``'s instance, as the webserver will read it."""
    import dagster as dg

    from platform_defs.assets.aggregates import daily_event_aggregates
    from platform_defs.resources import PostgresResource

    with dg.DagsterInstance.from_config(str(home)) as instance:
        for day in days:
            dg.materialize(
                [daily_event_aggregates],
                instance=instance,
                resources={"postgres": PostgresResource(database_url=url)},
                partition_key=day.isoformat(),
            )


@dataclass
class DagsterUi:
    """A running ``dagster-webserver``."""

    base_url: str
    process: subprocess.Popen[bytes]
    home: Path  # its DAGSTER_HOME
    log_path: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql", body, {"Content-Type": "application/json"}
        )
        with _DIRECT.open(request, timeout=30) as response:
            answer: dict[str, Any] = json.load(response)
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]  # type: ignore[no-any-return]


ASSET_LOADED = """
query { assetNodeOrError(assetKey: {path: ["daily_event_aggregates"]}) { __typename } }
"""


@contextlib.contextmanager
def run_webserver(
    home: Path, url: str, first_day: date | None = None, timeout: float = 90.0
) -> Iterator[DagsterUi]:
    """``dagster-webserver`` for ``platform_defs`` on a free loopback port, on ``home``'s
    instance and database ``url``; yields once the code location has loaded the asset.

    ``first_day`` becomes its ``AGGREGATE_START_DATE``: the Plots view's partition axis
    spans the asset's latest 120 partitions, so starting them at the first day shown
    keeps the days photographed from being squeezed into the axis's right edge.
    """
    port = free_port()
    env = os.environ | {"DAGSTER_HOME": str(home), "DATABASE_URL": url}
    if first_day is not None:
        env["AGGREGATE_START_DATE"] = first_day.isoformat()
    argv = [str(Path(sys.executable).parent / "dagster-webserver")]
    argv += ["-m", "platform_defs.definitions", "-h", "127.0.0.1", "-p", str(port)]
    log_path = home / "webserver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    ui = DagsterUi(f"http://127.0.0.1:{port}", process, home, log_path)
    try:
        if not wait_until_ok(f"{ui.base_url}/server_info", timeout=timeout, process=process):
            raise RuntimeError(f"dagster-webserver did not start:\n{log_path.read_text()[-3000:]}")
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while ui.graphql(ASSET_LOADED)["assetNodeOrError"]["__typename"] != "AssetNode":
            if datetime.now(UTC) > deadline or process.poll() is not None:
                raise RuntimeError(f"the code location did not load:\n{log_path.read_text()}")
            wait_until_ok(f"{ui.base_url}/server_info", timeout=0.5)
        yield ui
    finally:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
        signal_group(process, signal.SIGKILL)  # the code server it started


# Drawn means: every chart's canvas has ink, and it stopped changing (Chart.js animates).
_PLOTS_SETTLED = """
(expected) => {
  const canvases = [...document.querySelectorAll('canvas')].filter(c => c.width > 0);
  if (canvases.length < expected) return false;
  const inked = canvases.every(c => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
    return false;
  });
  if (!inked) return false;
  const now = canvases.map(c => c.toDataURL()).join('|');
  const same = window.__wdpLastPlots === now;
  window.__wdpLastPlots = now;
  return same;
}
"""


# The Table/Plots toggle's row down to the last chart, across the charts' columns.
_PLOTS_BOX = """
() => {
  const boxes = [...document.querySelectorAll('canvas')].map(c => c.getBoundingClientRect());
  const toggle = [...document.querySelectorAll('button')].find(b => b.textContent === 'Plots');
  const top = toggle.getBoundingClientRect().top - 16;
  const left = Math.min(...boxes.map(b => b.left)) - 24;
  const right = Math.max(...boxes.map(b => b.right)) + 16;
  const bottom = Math.max(...boxes.map(b => b.bottom)) + 70;
  if (bottom > window.innerHeight) return null;  // the window is too short for them all
  return {x: left, y: top, width: right - left, height: bottom - top};
}
"""


def screenshot_plots(ui: DagsterUi, out: Path, charts: int, timeout_ms: float = 60_000) -> Path:
    """Open the asset's overview, switch its metadata to Plots and photograph it once
    ``charts`` charts are drawn; returns ``out``. Needs ``/usr/bin/chromium``."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # Tall enough that every chart is on screen: the UI scrolls inside its own
            # panel, so a full-page screenshot would stop at the window's height.
            page = browser.new_page(viewport={"width": 1440, "height": 4400})
            page.goto(f"{ui.base_url}/assets/{ASSET}", wait_until="networkidle")
            toggle = page.get_by_role("button", name="Plots")
            toggle.click()
            page.wait_for_function(_PLOTS_SETTLED, arg=charts, timeout=timeout_ms, polling=250)
            box = page.evaluate(_PLOTS_BOX)
            if box is None:
                raise RuntimeError("the charts do not fit the browser window: make it taller")
            page.screenshot(path=str(out), clip=box)
        finally:
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from platform_defs.assets.usage_metadata import NUMERIC_FIGURES

    days = showcase_days()
    with fresh_database(keep=False) as (url, _, where), tempfile.TemporaryDirectory() as tmp:
        print(f"database: {where}")
        print(f"{seed(url, days)} events on {', '.join(map(str, days))}")
        home = prepare_home(Path(tmp) / "dagster")
        materialise(home, url, days)
        with run_webserver(home, url, first_day=days[0]) as ui:
            # One chart per numeric entry: the figures and the day's aggregate rows.
            shot = screenshot_plots(ui, args.out, charts=len(NUMERIC_FIGURES) + 1)
    print(f"wrote {shot}")


if __name__ == "__main__":
    main()
