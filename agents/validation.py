"""Pydantic's validation errors as the one line a person reads: where, and what is wrong."""

from __future__ import annotations

from pydantic import ValidationError


def problems(exc: ValidationError, subject: str = "input", most: int | None = None) -> str:
    """`subject.field: message; ...`, at most `most` of them (the rest counted)."""
    errors = exc.errors()
    shown = errors if most is None else errors[:most]
    parts = [f"{'.'.join(str(p) for p in e['loc']) or subject}: {e['msg']}" for e in shown]
    if len(errors) > len(shown):
        parts.append(f"and {len(errors) - len(shown)} more")
    return "; ".join(parts)
