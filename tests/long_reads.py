"""A job that needs more reading than a small context window holds: a repository of many large modules,
one of which rounds wrongly, and a script whose coder reads every module, thinking aloud as real models do,
before it fixes that one. Used in-process (tests/core) and over HTTP (tests/orchestrator)."""

from __future__ import annotations

from typing import Any

from helpers import approve, call, coder, plan_entry, subtask

from agents.prompts import render

WINDOW = 12_000
MODULES = 16
MODULE_CHARS = 16_000
BUGGY = 7
BUG = "    return round(sum(amounts), 1)  # totals are shown to the cent"
FIX = "    return round(sum(amounts), 2)  # totals are shown to the cent"
TEST_COMMAND = "python3 -m pytest -q"
TASK = "Totals are shown rounded to 10 cents instead of to the cent: find where, and fix it."
# How a summary request starts (the condenser's system prompt), and the summary the script gives.
CONDENSER = render("condenser").split("\n")[0][:40]
SUMMARY = "Files read: earlier ledger modules, only rate helpers and a total() rounding to the cent. Remaining: more."


def module(n: int) -> str:
    lines = [f'"""Ledger {n}: rates and totals."""', ""]
    size = sum(len(line) + 1 for line in lines)
    j = 0
    while size < MODULE_CHARS - 200:
        rate = ["", f"def rate_{j}(amount):", f"    return amount * {(j * 7 + n) % 13 + 1} / 13  # rate {j} of {n}"]
        lines += rate
        size += sum(len(line) + 1 for line in rate)
        j += 1
    lines += ["", "", "def total(amounts):", BUG if n == BUGGY else FIX]
    return "\n".join(lines) + "\n"


def thinking(previous: str | None, following: str) -> str:
    """What the coder says as it reads the next module: real models think aloud, at length."""
    if previous is None:
        return "The totals come from the ledger modules; I read them in order and look at each total()."
    return (
        f"{previous} only defines rate helpers that scale an amount by a factor below 14 and divide by 13, "
        "and its total() rounds the sum of the amounts; none of the rate helpers round, so the cents cannot be "
        "lost in them. The rounding that matters is in total(), at the end of each module, so I keep going "
        "through the modules in order and look at how each one ends. The test says that a total of 1.234 and "
        "1.0 must come out as 2.23, which is what rounding to two decimals gives; rounding to one decimal would "
        "give 2.2, and the director's report says the totals look rounded to ten cents, so somewhere a total is "
        "rounded to one decimal. The rate helpers cannot do it: they never call round, and their results are "
        "summed before any rounding happens. Every module's total() has the same shape, a round of the sum, so "
        "the difference must be in its second argument. I have not found a module that rounds to one decimal "
        "yet, and the modules do not import each other, so each must be read on its own to the end. "
        f"Reading {following} next, to see what its total() passes to round."
    )


def repo_files() -> dict[str, str]:
    files = {f"ledger/m{n:02}.py": module(n) for n in range(MODULES)}
    files["ledger/__init__.py"] = ""
    files["tests/test_totals.py"] = (
        f"from ledger.m{BUGGY:02} import total\n\n\ndef test_totals_are_shown_to_the_cent():\n"
        "    assert total([1.234, 1.0]) == 2.23\n"
    )
    return files


def script(**extra: Any) -> dict[str, Any]:
    """The job's script; `extra` adds top-level keys (e.g. the scripted server's `server`)."""
    reads = [
        {
            **coder("s1", call("view_file", path=f"ledger/m{n:02}.py")),
            "content": thinking(f"ledger/m{n - 1:02}.py" if n else None, f"ledger/m{n:02}.py"),
        }
        for n in range(MODULES)
    ]
    fix = {**coder("s1", call("edit_file", path=f"ledger/m{BUGGY:02}.py", old=BUG, new=FIX)),
           "content": f"ledger/m{BUGGY:02}.py rounds to one decimal."}
    submit = coder("s1", call("submit", summary=f"ledger/m{BUGGY:02}.py rounds totals to the cent"))
    # First, so that every summary request takes it and nothing else: the agents' own requests never match it.
    summaries = {"match": {"any_message_contains": CONDENSER}, "content": SUMMARY, "repeat": True}
    responses = [summaries, plan_entry(subtask("s1", "round totals to the cent")), *reads, fix, submit, approve("s1")]
    return {"context_window": WINDOW, "responses": responses, **extra}
