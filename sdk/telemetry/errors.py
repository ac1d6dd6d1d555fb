"""Errors of the telemetry SDK.

A builder refusing its input raises :class:`InvalidEventError`: a
:class:`~sdk.errors.WdpError`, so ``except WdpError`` catches everything wdp refuses,
and also a ``pydantic.ValidationError`` with the same ``errors()``, so code written
against the models (``except ValidationError``, ``exc.errors()``) keeps working.
"""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from sdk.errors import WdpError

_BUILT_IN_TYPES = frozenset(get_args(ErrorType))


class TelemetryError(WdpError):
    """Base of every telemetry error."""


class InvalidEventError(TelemetryError, ValidationError):
    """An ``emit_*`` builder's arguments do not make a valid event (nothing was queued)."""

    @classmethod
    def of(cls, exc: ValidationError) -> InvalidEventError:
        """The same errors as ``exc`` (type, location, message, input), as this class.

        Only failures pay for this; pydantic's own error types are rebuilt by name, the
        contract's custom ones (``unstorable_value``, ``rfc3339_datetime``) from their
        rendered message.
        """
        details: list[InitErrorDetails] = []
        for error in exc.errors(include_url=False):
            context = error.get("ctx")
            detail = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
            if error["type"] in _BUILT_IN_TYPES:
                if context is not None:
                    detail["ctx"] = context
            else:
                # The message is already rendered: a context is kept for callers that
                # read it, unless one of its keys would be substituted into the text.
                message = error["msg"]
                if context and any(f"{{{key}}}" in message for key in context):
                    context = None
                detail["type"] = PydanticCustomError(error["type"], message, context)
            details.append(detail)
        return cls.from_exception_data(exc.title, details)
