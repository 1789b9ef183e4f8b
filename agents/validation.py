"""Bad input as the one line a person reads: where, and what is wrong (pydantic errors, JSON that is no object)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def problems(exc: ValidationError, subject: str = "input", most: int | None = None) -> str:
    """`subject.field: message; ...`, at most `most` of them (the rest counted)."""
    errors = exc.errors()
    shown = errors if most is None else errors[:most]
    parts = [f"{'.'.join(str(p) for p in e['loc']) or subject}: {e['msg']}" for e in shown]
    if len(errors) > len(shown):
        parts.append(f"and {len(errors) - len(shown)} more")
    return "; ".join(parts)


def json_object(text: str) -> dict[str, Any]:
    """`text` parsed as one JSON object; ValueError saying in a line why it is not one."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise ValueError(f"not valid JSON ({exc.msg} at {where})") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"not a JSON object but {_JSON_TYPES.get(type(parsed), type(parsed).__name__)}")
    return parsed
