"""Both services close their engine the same way: only when they created it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from sdk.kb import KnowledgeBase


def _engine() -> sa.Engine:
    # Never connects: building an engine and disposing of its pool need no server.
    return sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")


@pytest.mark.parametrize("service_class", [ArtifactService, KnowledgeBase])
def test_close_disposes_of_the_engine_only_when_the_service_owns_it(
    service_class: type[ArtifactService] | type[KnowledgeBase], tmp_path: Path
) -> None:
    shared = _engine()
    pool = shared.pool
    service_class(engine=shared, store=FileStore(tmp_path)).close()
    assert shared.pool is pool  # a caller's engine outlives the services built on it

    owned = _engine()
    pool = owned.pool
    with service_class(engine=owned, store=FileStore(tmp_path), owns_engine=True) as service:
        assert isinstance(service, service_class)
    assert owned.pool is not pool  # disposed: a new, empty pool replaced the old one
