"""A command group that imports a command's module only when that command runs or shows its own help.

The pattern of click's "Lazily Loading Subcommands": the group knows each command's name and help without
importing it, so `shipyard --help` lists every command while loading none of what they need (the settings,
the store, the engine).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import typer.main
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a command lives, and what the group's help says of it until it is loaded."""

    module: str  # has `app`, a typer.Typer
    help: str  # the command's own help, word for word (a test holds them equal)
    group: bool = False  # `app` is the command itself, with sub-commands; else `app` holds it among others
    hidden: bool = False

    def load(self, name: str) -> TyperCommand | TyperGroup:
        app: typer.Typer = importlib.import_module(self.module).app
        group = typer.main.get_group(app)
        if self.group:
            group.name = name
            return group
        return cast(TyperCommand, group.commands[name])


class StandIn(TyperCommand):
    """A command not loaded yet: its name and help, for the group's help."""


class LazyGroup(TyperGroup):
    """A typer group whose commands are `table`'s: stand-ins (a name and a help) until one is resolved to run."""

    table: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # In `commands`, so that the help lists them and a mistyped name gets its "Did you mean".
        for name, lazy in self.table.items():
            self.commands[name] = StandIn(name=name, help=lazy.help, hidden=lazy.hidden)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from orchestrator.apps.cli.group_help import print_group_help

        print_group_help(ctx)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        # Every way into a command (running it, its --help, its sub-commands) passes here.
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, StandIn):
            command = self.commands[name] = self.table[name].load(name)
        return name, command, rest
