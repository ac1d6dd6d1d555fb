"""The group-commit writer on a real store and Postgres: whatever fails while a group
is written, its requests hear about it and the writer lives on (with one writer, the
default, its death would leave every later request waiting for ever)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool

from ingest_api.store import EventRow, EventStore, Outcome
from ingest_api.writer import GroupCommitWriter
from sdk.errors import ConfigurationError
from sdk.settings import WdpSettings
from sdk.telemetry.values import new_ulid, ulid_datetime


def row() -> EventRow:
    event_id = new_ulid()
    return EventRow(
        event_id=event_id,
        event_time=ulid_datetime(event_id),
        event_version=1,
        event_name="workflow.run_started",
        ts=datetime.now(UTC),
        run_id="group-commit",
        item_id=None,
        workflow_name=None,
        agent_role=None,
        payload_json=json.dumps({}),
    )


def test_the_writer_survives_a_failure_outside_the_store(migrated_db_url: str) -> None:
    async def scenario() -> None:
        pool = AsyncConnectionPool(
            migrated_db_url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=True)
        writer = GroupCommitWriter(EventStore(pool), writers=1)
        failures = [RuntimeError("the metrics hook broke")]

        def hook(size: int) -> None:
            if failures:
                raise failures.pop()

        writer.on_group = hook
        await writer.start()
        try:
            with pytest.raises(RuntimeError, match="metrics hook"):
                await asyncio.wait_for(writer.submit(row()), 10)
            # The next request is written: the one writer is still there.
            result = await asyncio.wait_for(writer.submit(row()), 10)
            assert result.outcome is Outcome.CREATED
        finally:
            await writer.stop()
            await pool.close()

    asyncio.run(scenario())


def test_more_writers_than_connections_is_refused_at_start() -> None:
    from ingest_api.app import create_app

    settings = WdpSettings(
        ingest_api_keys="k", ingest_group_commit_writers=8, ingest_db_pool_size=8
    )
    with pytest.raises(ConfigurationError, match="INGEST_GROUP_COMMIT_WRITERS"):
        create_app(settings)
