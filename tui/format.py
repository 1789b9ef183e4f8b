"""How statuses, money, tokens and times read in the TUI and the CLI.

Colours are ANSI names: Textual maps them through the theme's ANSI palette, so the same
names stay readable on dark and light themes, and rich prints them as they are.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

STYLE: dict[str, str] = {
    "succeeded": "green", "unverified": "yellow", "partial": "yellow", "approved": "green", "running": "cyan",
    "coding": "cyan", "testing": "cyan",
    "fixing": "yellow", "reviewing": "blue", "planning": "cyan", "failed": "red", "rejected": "red",
    "cancelled": "red", "queued": "dim",
    "awaiting_approval": "yellow bold",
    "awaiting_budget": "yellow bold",
    "merged": "green bold",
    "conflict": "red",
    "accepted": "green bold",
    "discarded": "dim",
    "submitted": "green",
    "limit": "red",
    "error": "red",
    "stopped": "dim",
    "approve": "green",
    "request_changes": "yellow",
}

# Job statuses in which agents may still be at work.
ACTIVE = frozenset({"queued", "planning", "running", "awaiting_approval", "awaiting_budget"})

ICON: dict[str, str] = {
    "queued": "○", "planning": "◐", "running": "◐", "coding": "◐", "testing": "◐", "fixing": "◐",
    "reviewing": "◐", "awaiting_approval": "◆", "awaiting_budget": "◆", "approved": "✓", "merged": "✓",
    "succeeded": "✓", "unverified": "✓", "partial": "◑",
    "accepted": "✓", "submitted": "✓", "approve": "✓", "request_changes": "↺", "failed": "✗",
    "rejected": "✗", "cancelled": "✗", "conflict": "✗", "limit": "✗", "error": "✗", "discarded": "–",
    "stopped": "–",
}


def label(status: str) -> str:
    return status.replace("_", " ")


def status_text(status: str) -> Text:
    """A status with its icon, in its colour."""
    return Text(f"{ICON.get(status, '•')} {label(status)}", style=STYLE.get(status, ""))


def money(cost: float) -> str:
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def tokens(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count / 1000:.0f}k"
    if count >= 1000:
        return f"{count / 1000:.1f}k"
    return str(count)


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def age(ts: float, now: float) -> str:
    seconds = int(now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def short(value: Any, limit: int = 80) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: str | None, limit: int = 80) -> str:
    lines = (text or "").strip().splitlines()
    return short(lines[0] if lines else "", limit)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """The values as bars, lowest to highest; a value missing (no figure) as a space."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(" " if v is None else _BARS[round((v - low) / span * (len(_BARS) - 1))] for v in values)
