"""The price table ``sdk/langgraph/prices.py`` had before issue 15, by hand, "as of 2025".

Kept only as a record, for the test that genai-prices covers every model of it at the
same rates (tests/unit/test_prices_genai.py): the handler's prices come from
genai-prices' data now (:mod:`sdk.langgraph.prices`).
"""

from __future__ import annotations

from sdk.langgraph.prices import ModelPrice

_GPT_4O = ModelPrice.per_million(input=2.50, output=10.00, cached_input=1.25)
_GPT_4O_MINI = ModelPrice.per_million(input=0.15, output=0.60, cached_input=0.075)
_GPT_41 = ModelPrice.per_million(input=2.00, output=8.00, cached_input=0.50)
_GPT_41_MINI = ModelPrice.per_million(input=0.40, output=1.60, cached_input=0.10)
_O3_MINI = ModelPrice.per_million(input=1.10, output=4.40, cached_input=0.55)
_SONNET = ModelPrice.per_million(input=3.00, output=15.00, cached_input=0.30, cache_write=3.75)
_HAIKU_35 = ModelPrice.per_million(input=0.80, output=4.00, cached_input=0.08, cache_write=1.00)

SEED_ERA_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": _GPT_4O,
    "gpt-4o-2024-08-06": _GPT_4O,
    "gpt-4o-2024-11-20": _GPT_4O,
    "gpt-4o-mini": _GPT_4O_MINI,
    "gpt-4o-mini-2024-07-18": _GPT_4O_MINI,
    "gpt-4.1": _GPT_41,
    "gpt-4.1-2025-04-14": _GPT_41,
    "gpt-4.1-mini": _GPT_41_MINI,
    "gpt-4.1-mini-2025-04-14": _GPT_41_MINI,
    "o3-mini": _O3_MINI,
    "o3-mini-2025-01-31": _O3_MINI,
    "claude-3-5-sonnet-20240620": _SONNET,
    "claude-3-5-sonnet-20241022": _SONNET,
    "claude-3-5-sonnet-latest": _SONNET,
    "claude-3-7-sonnet-20250219": _SONNET,
    "claude-3-7-sonnet-latest": _SONNET,
    "claude-3-5-haiku-20241022": _HAIKU_35,
    "claude-3-5-haiku-latest": _HAIKU_35,
}
