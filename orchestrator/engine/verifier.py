"""A campaign's verifier: a command whose exit code says whether the goal holds, and whose output says
how far it is — the figure, a number such as a coverage percentage or a count of failing tests."""

from __future__ import annotations

import re

from pydantic import BaseModel

from orchestrator.store.jobs import Campaign
from sandboxes.base import ExecResult, cap_output

# The most of a verifier's output a measurement keeps (head and tail): planners and people read it.
OUTPUT_CHARS = 6_000
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


class Measurement(BaseModel):
    """What the verifier said of one commit."""

    sha: str
    passed: bool
    figure: float | None
    output: str
    timed_out: bool = False


def measure(result: ExecResult, sha: str, campaign: Campaign) -> Measurement:
    return Measurement(sha=sha, passed=result.ok, figure=figure_of(result.output, campaign.figure_pattern),
                       output=cap_output(result.output, OUTPUT_CHARS)[0], timed_out=result.timed_out)


def figure_of(output: str, pattern: str | None = None) -> float | None:
    """The figure in a verifier's output: the pattern's first group (or match), the last one found; without a
    pattern, the last number on the last line that has one ("87.5%" reads 87.5, "3 failing" reads 3)."""
    if pattern is not None:
        found = list(re.finditer(pattern, output, re.MULTILINE))
        if not found:
            return None
        text = found[-1].group(1) if found[-1].groups() else found[-1].group(0)
        number = _NUMBER.search(text)
        return float(number.group(0)) if number else None
    for line in reversed(output.strip().splitlines()):
        numbers = _NUMBER.findall(line)
        if numbers:
            return float(numbers[-1])
    return None


def better(a: Measurement, b: Measurement | None, campaign: Campaign) -> bool:
    """Whether `a` is further towards the goal than `b`: passing first, then the figure's way."""
    if b is None:
        return True
    if a.passed != b.passed:
        return a.passed
    if a.figure is None or b.figure is None:
        return False
    return a.figure < b.figure if campaign.figure == "lower" else a.figure > b.figure


def rule(campaign: Campaign) -> str:
    """How the figure reads, for the planner."""
    way = "lower" if campaign.figure == "lower" else "higher"
    return f"Its figure is better {way}."
