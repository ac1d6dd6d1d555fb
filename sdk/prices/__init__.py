"""Model prices: a dated, versioned price table and what calls cost.

:mod:`sdk.prices.model` is the arithmetic (shared by the SDK's local estimate and the
platform's aggregates), :mod:`sdk.prices.book` the lookup of the price valid for a call
on a day. The table ``telemetry.model_prices`` is read and written by
:mod:`sdk.prices.repository` only.
"""

from sdk.prices.book import ALWAYS, MANUAL, PriceBook, PriceRow
from sdk.prices.errors import InvalidPrice, PriceError
from sdk.prices.model import BANDS, KINDS, CallTokens, Kind, Price, Tier, band_of, cost

__all__ = [
    "ALWAYS",
    "BANDS",
    "KINDS",
    "MANUAL",
    "CallTokens",
    "InvalidPrice",
    "Kind",
    "Price",
    "PriceBook",
    "PriceError",
    "PriceRow",
    "Tier",
    "band_of",
    "cost",
]
