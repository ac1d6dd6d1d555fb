"""The value types every event field is built from, and the events' base model.

Apart from :mod:`sdk.telemetry.events` so that parts of payloads defined elsewhere
(:mod:`sdk.telemetry.model_calls`) use the very same bounds.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sdk.telemetry.values import ULID_PATTERN

__all__ = [
    "MAX_TOKENS",
    "MAX_USD",
    "DurationMs",
    "Id",
    "Name",
    "NonNegInt",
    "Score",
    "Sha256",
    "Text",
    "Tokens",
    "Ulid",
    "Usd",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN, to_upper=True)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
NonNegInt = Annotated[int, Field(ge=0, le=2**63 - 1)]
# Tokens of one event: at most a trillion. Far above any real call, and low enough that a
# day's sum cannot overflow the aggregates' bigint (it would take 9 million events of a
# trillion tokens each): one absurd event must not make its day impossible to aggregate.
MAX_TOKENS = 10**12
Tokens = Annotated[int, Field(ge=0, le=MAX_TOKENS)]
DurationMs = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# USD of one event: at most a billion, so no sum of them becomes infinite (a float sum
# of two 1.7e308 costs did, and raw events and aggregates are kept).
MAX_USD = 1e9
Usd = Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
Score = Annotated[float, Field(allow_inf_nan=False)]
