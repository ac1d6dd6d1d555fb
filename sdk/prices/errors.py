"""Errors of :mod:`sdk.prices`: model prices and what calls cost.

Everything the prices package refuses is a :class:`PriceError`. :class:`InvalidPrice`
is a price that cannot be stored or applied (a negative rate, a tier at an unsupported
threshold, a bad pattern); the CLI names the option, the sync skips the model and says
so. Driver errors are translated where they happen and kept as ``__cause__``.
"""

from __future__ import annotations

from sdk.errors import WdpError

__all__ = ["InvalidPrice", "PriceError"]


class PriceError(WdpError):
    """Base of every prices error."""


class InvalidPrice(PriceError, ValueError):
    """A price, pattern or tier that cannot be stored or applied."""
