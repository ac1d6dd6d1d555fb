"""PRICES_FETCH_URL (opt-in): genai-prices data fetched over real HTTP on loopback.

A server on 127.0.0.1 answers GETs with a small provider list in genai-prices' published
format (or an error); ``wdp prices sync`` and the asset fetch it instead of the pinned
package's data. Nothing here reaches the internet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from platform_defs.assets.prices import model_prices
from platform_defs.resources import PostgresResource
from sdk.cli.main import app
from sdk.db import migrate
from sdk.db.engine import create_engine
from sdk.prices.genai import SEED_MANUAL
from sdk.prices.repository import load_book
from sdk.settings import reset_settings_cache

FETCHED = f"genai-prices fetched {datetime.now(UTC).date().isoformat()}"


def payload(acme_1_input: str = "1.5") -> list[dict[str, Any]]:
    return [
        {
            "id": "acme",
            "name": "Acme",
            "api_pattern": "acme",
            "model_match": {"starts_with": "acme"},
            "models": [
                {
                    "id": "acme-1",
                    "match": {"or": [{"equals": "acme-1"}, {"starts_with": "acme-1-"}]},
                    "prices": {"input_mtok": acme_1_input, "output_mtok": 2},
                },
                {
                    "id": "acme-2",
                    "match": {"equals": "acme-2"},
                    "prices": [
                        {"prices": {"input_mtok": 1, "output_mtok": 2}},
                        {"constraint": {"start_date": "2026-03-01"},
                         "prices": {"input_mtok": 3, "output_mtok": 4}},
                    ],
                },
                {"id": "acme-image", "match": {"equals": "acme-image"},
                 "prices": {"requests_kcount": 40}},
            ],
        }
    ]  # fmt: skip


@dataclass
class PriceServer:
    url: str = ""
    status: int = 200
    body: bytes = b""
    gets: list[str] = field(default_factory=list)

    def serve(self, value: Any) -> None:
        self.status, self.body = 200, json.dumps(value).encode()


@pytest.fixture
def server() -> Iterator[PriceServer]:
    state = PriceServer()
    state.serve(payload())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.gets.append(self.path)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/data.json"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def db(
    database_factory: Callable[[], str],
    server: PriceServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, sa.Engine]]:
    url = database_factory()
    migrate.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WDP_DATA_DIR", str(tmp_path / "wdp"))
    monkeypatch.setenv("PRICES_FETCH_URL", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback, never a proxy
    reset_settings_cache()
    engine = create_engine(url)
    yield url, engine
    engine.dispose()
    reset_settings_cache()


def wdp(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["prices", *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(load_book(conn).rows)


def test_sync_fetches_the_data_and_stores_it_once(
    db: tuple[str, sa.Engine], server: PriceServer
) -> None:
    _, engine = db
    first = wdp("sync")
    assert server.gets == ["/data.json"]
    assert first.stdout.startswith(f"Prices synced from {FETCHED}: 3 added, 0 changed, ")
    assert f"fetching genai-prices data from {server.url} (PRICES_FETCH_URL)" in first.stderr
    assert "skipped 1: not priced per token (acme/acme-image)" in first.stdout
    assert rows(engine) == 3 + len(SEED_MANUAL)
    with engine.connect() as conn:
        book = load_book(conn)
    one = book.resolve("acme-1-large", None, date(2026, 1, 1))
    assert one is not None
    assert (one.model, one.provider, one.source, str(one.price.input)) == (
        "acme-1", "acme", FETCHED, "1.5",
    )  # fmt: skip
    assert book.resolve("acme-2", "acme", date(2026, 3, 1)).price.input == 3  # type: ignore[union-attr]
    again = wdp("sync")
    assert "0 added, 0 changed, 3 unchanged" in again.stdout
    assert len(server.gets) == 2
    assert rows(engine) == 3 + len(SEED_MANUAL)


def test_a_changed_price_at_the_url_is_one_new_row(
    db: tuple[str, sa.Engine], server: PriceServer
) -> None:
    _, engine = db
    wdp("sync")
    server.serve(payload(acme_1_input="1.75"))
    out = wdp("sync").stdout
    assert "0 added, 1 changed, 2 unchanged" in out
    assert "in 1.5, out 2" in out
    assert "in 1.75, out 2" in out
    assert rows(engine) == 4 + len(SEED_MANUAL)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"{}", "HTTPStatusError: Server error '500 Internal Server Error'"),
        (200, b"<html>not json</html>", "JSONDecodeError"),
        (200, b'{"providers": []}', "ValueError: Expected fetched prices payload"),
        (200, b'[{"id": "x"}]', "ValidationError"),
        (200, b"[]", "answered no genai-prices providers"),
    ],
)
def test_a_failed_fetch_is_a_clear_error_and_stores_nothing(
    db: tuple[str, sa.Engine], server: PriceServer, status: int, body: bytes, reason: str
) -> None:
    _, engine = db
    server.status, server.body = status, body
    result = wdp("sync", code=2)
    assert result.stdout == ""
    progress, error = result.stderr.splitlines()  # the progress line, then one red line
    assert progress.startswith("fetching genai-prices data from ")
    assert error.startswith(f"error: could not fetch genai-prices data from {server.url}: ") or (
        error == f"error: {server.url} answered no genai-prices providers"
    )
    assert reason in error
    assert "Traceback" not in result.stderr
    assert rows(engine) == 0


def test_the_asset_syncs_the_fetched_data(db: tuple[str, sa.Engine], server: PriceServer) -> None:
    url, _ = db
    result = dg.materialize(
        [model_prices], resources={"postgres": PostgresResource(database_url=url)}
    )
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (metadata["source"], metadata["added"], metadata["skipped"]) == (FETCHED, 3, 1)
    assert server.gets == ["/data.json"]


def test_unset_means_no_request(
    db: tuple[str, sa.Engine], server: PriceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRICES_FETCH_URL")
    reset_settings_cache()
    assert "genai-prices 0.2.3" in wdp("sync", "--dry-run").stdout
    assert server.gets == []


def test_make_runs_start_up_sync_follows_the_setting(
    db: tuple[str, sa.Engine], server: PriceServer
) -> None:
    """Syncing the pinned data at start-up would re-insert its prices over fetched ones
    at every restart; with the setting, start-up fetches too."""
    from sdk.cli.stack import _sync_prices

    url, engine = db
    wdp("sync")
    _sync_prices(url)
    assert len(server.gets) == 2
    with engine.connect() as conn:
        sources = {r.source for r in load_book(conn).rows}
    assert sources == {FETCHED, "manual"}
