"""``--help`` that names what a value is (FILE, KEY=VALUE, PORT), not its Python type.

Typer 0.29 shows each parameter's annotation in help (``<str>``, ``<list[str]>``), and
``<bool>`` even beside flags and ``--help``, which take no value. Options say what they
take with ``metavar=`` (every option of wdp declares one). What typer has no setting for
is done by the command classes here, which :class:`Typer` uses for every group and
command: a flag shows no value; an argument is named by its metavar in the first column
and shows no type beside it; an option left without a metavar gets the classic name of
its type (TEXT, INTEGER, ...) rather than a Python one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer._click.core import Context, Parameter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_CLASSIC_NAMES: dict[Any, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "NUMBER",
    Path: "PATH",
    list[str]: "TEXT",
    list[Path]: "PATH",
}


class _NamedArgument(TyperArgument):
    """An argument whose metavar (in the name column) already says what it is."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None


def _human(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            if param.is_flag or param.count:
                param.metavar = ""  # a flag takes no value
            else:
                annotation = param.type_descriptor.annotation
                param.metavar = _CLASSIC_NAMES.get(annotation, "VALUE")
        elif type(param) is TyperArgument:
            if param.metavar is None:
                param.metavar = param.name.upper() if param.name else "ARG"
            # Typer builds its parameters itself, with no hook for their class; this one
            # only overrides how help shows the type, and adds no state.
            param.__class__ = _NamedArgument
    return params


class HumanHelpCommand(TyperCommand):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _human(super().get_params(ctx))


class HumanHelpGroup(TyperGroup):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _human(super().get_params(ctx))


class Typer(typer.Typer):
    """``typer.Typer`` whose groups and commands print :mod:`human <sdk.cli.help>` help."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", HumanHelpGroup)
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        kwargs.setdefault("cls", HumanHelpCommand)
        return super().command(name, **kwargs)
