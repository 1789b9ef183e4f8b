"""Prompt templates, one file per role and message: the prompts are data, not code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    autoescape=False,
)


def render(name: str, **values: Any) -> str:
    """The template `name` (e.g. "coder" or "coder_task") filled with `values`."""
    return _env.get_template(f"{name}.md").render(**values).strip() + "\n"
