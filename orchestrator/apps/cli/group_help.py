"""`shipyard --help`, drawn in typer's panels with rich alone.

Typer's help renderer imports rich's Markdown and Traceback renderers whatever the help holds, which is
most of what `shipyard --help` would spend; the root's help needs neither. It is drawn from click's own
objects (the group's usage, options and commands), so that it lists what the command line really takes.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def print_group_help(ctx: Any) -> None:
    """The help of the group of `ctx` (a click context): usage, what it does, its options, its commands."""
    group = ctx.command
    console = Console(highlight=False)
    console.print()
    usage = " ".join([ctx.command_path, *group.collect_usage_pieces(ctx)])
    console.print(Padding(Text.assemble(("Usage: ", "yellow"), (usage, "bold")), (0, 1)))
    console.print()
    if group.help:
        console.print(Padding(Text(" ".join(group.help.split())), (0, 1)))
        console.print()
    options = _rows()
    for param in group.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or getattr(param, "hidden", False):
            continue
        names = [n for n in (*param.opts, *param.secondary_opts) if n.startswith("--")]
        short = [n for n in (*param.opts, *param.secondary_opts) if not n.startswith("--")]
        options.add_row(Text(", ".join(names), "bold cyan"), Text(", ".join(short), "bold green"),
                        Text(record[1]))
    console.print(_panel("Options", options))
    commands = _rows()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            commands.add_row(Text(name, "bold cyan"), Text(command.help or ""))
    console.print(_panel("Commands", commands))


def _rows() -> Table:
    return Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)


def _panel(title: str, rows: Table) -> Panel:
    return Panel(rows, title=title, title_align="left", border_style="dim", box=box.ROUNDED)
