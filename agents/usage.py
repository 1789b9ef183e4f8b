"""What model calls used and cost: one Usage per call, booked in a ledger shared by a job's agents."""

from __future__ import annotations

import threading
from collections.abc import Callable

from pydantic import BaseModel, Field


class Usage(BaseModel):
    """One model call's bill."""

    role: str
    model: str
    agent: str | None = None
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = Field(0, description="of input_tokens, read from the endpoint's prompt cache")
    cost: float = Field(description="USD; 0 when the model is unpriced")
    priced: bool
    estimated: bool = Field(
        False, description="the endpoint reported no token counts: they were counted here (agents.tokens)"
    )
    latency: float = Field(description="seconds, retries included")


class UsageTotals(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    unpriced_calls: int = 0
    estimated_calls: int = Field(0, description="calls whose tokens were counted here, not reported by the endpoint")

    def plus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(**{name: getattr(self, name) + getattr(other, name) for name in UsageTotals.model_fields})

    def minus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(**{name: getattr(self, name) - getattr(other, name) for name in UsageTotals.model_fields})

    def add(self, usage: Usage) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_input_tokens += usage.cached_input_tokens
        self.cost += usage.cost
        self.latency += usage.latency
        self.unpriced_calls += not usage.priced
        self.estimated_calls += usage.estimated


class UsageLedger:
    """Every call of a job, shared by its agents across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Usage] = []

    def record(self, usage: Usage) -> None:
        with self._lock:
            self._records.append(usage)

    @property
    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)

    def total(self) -> UsageTotals:
        totals = UsageTotals()
        for usage in self.records:
            totals.add(usage)
        return totals

    def by_role(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.role)

    def by_model(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.model)

    def by_agent(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.agent or u.role)

    def _grouped(self, key: Callable[[Usage], str]) -> dict[str, UsageTotals]:
        groups: dict[str, UsageTotals] = {}
        for usage in self.records:
            groups.setdefault(key(usage), UsageTotals()).add(usage)
        return groups
