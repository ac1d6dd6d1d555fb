"""Dagster resources: the platform database, built from the shared settings at run time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from sdk.artifacts import ArtifactService
from sdk.db.engine import create_engine
from sdk.kb import KnowledgeBase


class PostgresResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The wdp Postgres (``DATABASE_URL``, or the embedded server under ``WDP_DATA_DIR``).

    Nothing is read or connected when the definitions load: the URL is resolved through
    :mod:`sdk.settings` only when an asset asks for an engine, so the code location loads
    on a machine without a database and tests can point it anywhere.
    """

    database_url: str | None = None
    """Explicit libpq/SQLAlchemy URL; unset: the shared settings decide (tests set it)."""

    @contextmanager
    def engine(self) -> Iterator[sa.Engine]:
        """An engine for the duration of one step, disposed afterwards (no pooled leftovers)."""
        eng = create_engine(self.database_url)
        try:
            yield eng
        finally:
            eng.dispose()


class ArtifactStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The shared artifact service (:mod:`sdk.artifacts`): the same code, database and
    store (files, or S3/MinIO per ``ARTIFACT_STORE``) that agents use, so assets read and
    write artifacts exactly as the orchestrator does. Built per step, from the settings."""

    database_url: str | None = None
    """Explicit database URL; unset: the shared settings decide (tests set it)."""

    @contextmanager
    def service(self) -> Iterator[ArtifactService]:
        engine = create_engine(self.database_url) if self.database_url else None
        svc = ArtifactService.from_settings(engine=engine)
        try:
            yield svc
        finally:
            svc.close()
            if engine is not None:
                engine.dispose()


class KnowledgeBaseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The knowledge base (:mod:`sdk.kb`): the same ingestion and search code the CLI and
    agents use, on the database, blob store and embedder of the shared settings."""

    database_url: str | None = None
    """Explicit database URL; unset: the shared settings decide (tests set it)."""

    @contextmanager
    def knowledge_base(self) -> Iterator[KnowledgeBase]:
        engine = create_engine(self.database_url) if self.database_url else None
        kb = KnowledgeBase.from_settings(engine=engine)
        try:
            yield kb
        finally:
            kb.close()
            if engine is not None:
                engine.dispose()
