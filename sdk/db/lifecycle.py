"""What the services on the database share: an engine they may own, closed with them."""

from __future__ import annotations

from typing import Self

import sqlalchemy as sa


class EngineHolder:
    """A service's engine and its lifecycle, in one place for every service.

    :meth:`close` disposes of the engine only when the service created it
    (``owns_engine``: what ``from_settings`` passes when it was given no engine), so an
    engine a caller shares between services outlives each of them. ``with`` closes too.
    """

    def __init__(self, engine: sa.Engine, *, owns_engine: bool) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    def close(self) -> None:
        """Dispose of the engine if this service created it."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
