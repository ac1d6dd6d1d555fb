"""Generate the builders and the payload TypedDicts from the event models.

``python -m sdk.telemetry.codegen`` rewrites :mod:`sdk.telemetry.emitters` (the eleven
``emit_*`` builders) and :mod:`sdk.telemetry.payloads` (each payload as a TypedDict);
a unit test fails when either is stale, as for docs/events.md. The models stay the one
description of each event: the builders get explicit, typed keyword arguments with
the models' defaults (so mypy and IDEs know them, which builders made at runtime would
lose), and code that builds payloads as plain dicts (the LangGraph handler) gets mypy's
key and type checks for free - a TypedDict is a plain dict at runtime, so the hot path
pays nothing for them. Only tests and this command import this module.
"""

from __future__ import annotations

import json
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sdk.telemetry import events

HERE = Path(__file__).resolve().parent

# The builders' envelope arguments (checked against EventBase by the unit tests).
ENVELOPE = (
    ("run_id", "str | None"),
    ("item_id", "str | None"),
    ("workflow_name", "str | None"),
    ("agent_role", "str | None"),
    ("event_id", "str | None"),
    ("ts", "datetime | None"),
    ("client", "TelemetryClient | None"),
)

PAYLOADS_DOC = '''\
"""The event payloads as TypedDicts, for code that builds a payload as a plain dict.

Generated from the models in :mod:`sdk.telemetry.events` by
``python -m sdk.telemetry.codegen``: do not edit; a unit test fails when this file is
stale. mypy checks a dict declared as one of these (an unknown or misspelled key, a
missing required one, a value of the wrong type) at no runtime cost, a TypedDict being
a plain dict. Limits on values (lengths, ranges) are the models' to check, when the
event is validated.
"""
'''

EMITTERS_DOC = '''\
"""The ``emit_*`` builders, one per event: keyword-only, typed, validated at the call.

Generated from the models in :mod:`sdk.telemetry.events` by
``python -m sdk.telemetry.codegen``: do not edit; a unit test fails when this file is
stale. Each builder's payload arguments are its model's fields with the model's
defaults (None for a free-form field means the model's empty dict); what a builder
then does - envelope, correlation, validation, queueing - is
:func:`sdk.telemetry.emitting.emit_event`. Bad input raises
:class:`~sdk.telemetry.errors.InvalidEventError`. Each returns its event, so callers
can log or link its id.
"""
'''


def payload_model(event_type: type[events.EventBase]) -> type[BaseModel]:
    model = event_type.model_fields["payload"].annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{event_type.__name__}.payload is not a model")
    return model


def dict_name(event_type: type[events.EventBase]) -> str:
    """``StepCompleted`` -> ``StepCompletedPayloadDict``."""
    return f"{payload_model(event_type).__name__}Dict"


def builder_name(event_type: type[events.EventBase]) -> str:
    """``learning.feedback_received`` -> ``emit_feedback_received``."""
    return "emit_" + str(event_type.model_fields["event_name"].default).split(".")[1]


def filled_by_model(field: FieldInfo) -> bool:
    """A free-form field whose default is a fresh dict: its builder argument defaults to
    None, and is left out of the payload when None, so that the model's default applies."""
    return field.default_factory is not None


def _aliases() -> dict[str, Any]:
    """The contract's named Literal types (``TargetType``, …), to be used by name."""
    return {name: value for name, value in vars(events).items() if get_origin(value) is Literal}


class _Source:
    """Builds a module's text, remembering which names it needs imported."""

    def __init__(self) -> None:
        self.aliases = _aliases()
        self.typing: set[str] = set()
        self.events: set[str] = set()
        self.nested: dict[str, type[BaseModel]] = {}
        self.nested_prefix = ""

    def type_of(self, hint: Any) -> str:
        for name, alias in self.aliases.items():
            if hint == alias:
                self.events.add(name)
                return name
        origin, args = get_origin(hint), get_args(hint)
        if origin is Literal:
            self.typing.add("Literal")
            return f"Literal[{', '.join(json.dumps(a) for a in args)}]"
        if origin in (Union, types.UnionType):
            return " | ".join(self.type_of(a) for a in args)
        if origin is not None:
            return f"{origin.__name__}[{', '.join(self.type_of(a) for a in args)}]"
        if hint is Any:
            self.typing.add("Any")
            return "Any"
        if hint is type(None):
            return "None"
        if isinstance(hint, type) and hint.__module__ == "builtins":
            return hint.__name__
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            # A model nested in a payload (a step's calls): its own TypedDict.
            self.nested[hint.__name__] = hint
            return f"{self.nested_prefix}{hint.__name__}Dict"
        raise TypeError(f"no source form for {hint!r}")  # a new kind of field: teach me

    def imports(self, *extra: str, future: bool = True) -> str:
        # Not for TypedDicts: Python 3.11 cannot see NotRequired in a string annotation.
        lines = ["from __future__ import annotations", ""] if future else []
        lines += [line for line in extra if line.startswith("from datetime")]
        lines.append(f"from typing import {', '.join(sorted(self.typing))}")
        lines.append("")
        lines += [line for line in extra if not line.startswith("from datetime")]
        if self.events:
            names = sorted(self.events)
            lines.append("from sdk.telemetry.events import (")
            lines += [f"    {name}," for name in names]
            lines.append(")")
        return "\n".join(lines) + "\n"


def _fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo, Any]]:
    hints = get_type_hints(model)  # Annotated constraints stripped: the models' job
    return [(name, field, hints[name]) for name, field in model.model_fields.items()]


def _typed_dict(source: _Source, event_type: type[events.EventBase]) -> str:
    model = payload_model(event_type)
    event_name = event_type.model_fields["event_name"].default
    head = f"class {dict_name(event_type)}(TypedDict):"
    doc = f'    """The payload of ``{event_name}`` (``{model.__name__}``)."""'
    return _dict_of(source, model, head, doc)


def _dict_of(source: _Source, model: type[BaseModel], head: str, doc: str) -> str:
    lines = [head, doc, ""]
    for name, field, hint in _fields(model):
        text = source.type_of(hint)
        if not field.is_required():
            source.typing.add("NotRequired")
            text = f"NotRequired[{text}]"
        lines.append(f"    {name}: {text}")
    return "\n".join(lines) + "\n"


def render_payloads() -> str:
    source = _Source()
    source.typing |= {"TypedDict", "TypeAlias"}
    classes = [_typed_dict(source, t) for t in events.EVENT_TYPES]
    nested = [
        _dict_of(
            source,
            model,
            f"class {name}Dict(TypedDict):",
            f'    """``{name}`` as a dict (:mod:`{model.__module__}`)."""',
        )
        for name, model in sorted(source.nested.items())
    ]
    classes = nested + classes
    union = "\n    | ".join(dict_name(t) for t in events.EVENT_TYPES)
    return (
        PAYLOADS_DOC
        + "\n"
        + source.imports(future=False)
        + "\n\n"
        + "\n\n".join(classes)
        + f"\n\nPayloadDict: TypeAlias = (\n    {union}\n)\n"
        + '"""Any event\'s payload as a dict."""\n'
    )


def _default(field: FieldInfo) -> str:
    if filled_by_model(field):
        return "None"
    if field.default is None or isinstance(field.default, bool | int | float):
        return repr(field.default)
    if isinstance(field.default, str):
        return json.dumps(field.default)
    raise TypeError(f"no source form for the default {field.default!r}")


def _builder(source: _Source, event_type: type[events.EventBase]) -> str:
    model = payload_model(event_type)
    source.events.add(event_type.__name__)
    lines = [f"def {builder_name(event_type)}(", "    *,"]
    payload, later = [], []
    for name, field, hint in _fields(model):
        text = source.type_of(hint)
        if filled_by_model(field):
            text += " | None"
            later.append(name)
        else:
            payload.append(name)
        default = "" if field.is_required() else f" = {_default(field)}"
        lines.append(f"    {name}: {text}{default},")
    lines += [f"    {name}: {text} = None," for name, text in ENVELOPE]
    lines.append(f") -> {event_type.__name__}:")
    summary = textwrap.wrap(model.__doc__ or "", 84)
    ids = " and ".join(f"``{i}``" for i in event_type.required_ids)
    needs = f"; needs {ids} (given or from the correlation)" if ids else ""
    name = event_type.model_fields["event_name"].default
    lines.append(f'    """{summary[0]}' if summary else '    """')
    lines += [f"    {line}" for line in summary[1:]]
    lines += ["", f'    ``{name}``{needs}."""']
    items = [f'"{n}": {n}' for n in payload]
    typed = f"payloads.{dict_name(event_type)}"  # so mypy checks this against the TypedDict
    one_line = f"    payload: {typed} = {{{', '.join(items)}}}"
    if len(one_line) <= 100:
        lines.append(one_line)
    else:
        lines.append(f"    payload: {typed} = {{")
        lines += [f"        {item}," for item in items]
        lines.append("    }")
    for name in later:
        lines += [f"    if {name} is not None:", f'        payload["{name}"] = {name}']
    lines.append(f"    envelope = {', '.join(n for n, _ in ENVELOPE)}")
    lines.append(f"    return emit_event({event_type.__name__}, payload, envelope)")
    return "\n".join(lines) + "\n"


def render_emitters() -> str:
    source = _Source()
    source.nested_prefix = "payloads."
    functions = [_builder(source, t) for t in events.EVENT_TYPES]
    imports = source.imports(
        "from datetime import datetime",
        "from sdk.telemetry import payloads",
        "from sdk.telemetry.client import TelemetryClient",
        "from sdk.telemetry.emitting import emit_event",
    )
    names = "".join(f'\n    "{n}",' for n in sorted(map(builder_name, events.EVENT_TYPES)))
    return (
        EMITTERS_DOC
        + "\n"
        + imports
        + f"\n__all__ = [{names}\n]\n"
        + "\n\n"
        + "\n\n".join(functions)
    )


GENERATED: dict[str, Callable[[], str]] = {
    "payloads.py": render_payloads,
    "emitters.py": render_emitters,
}


def main() -> int:
    for name, render in GENERATED.items():
        (HERE / name).write_text(render())
        print(f"wrote {HERE / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
