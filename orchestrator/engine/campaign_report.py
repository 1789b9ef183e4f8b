"""A campaign's report: its figure over time, what each iteration merged, what it cost, why it ended."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from orchestrator.engine.campaign import JournalEntry
from orchestrator.engine.verifier import Measurement


class CampaignReport(BaseModel):
    kind: Literal["campaign"] = "campaign"
    job_id: str
    status: str
    branch: str
    base_sha: str
    head_sha: str
    figures: list[float | None]  # at the start, then after each iteration
    passed: bool
    iterations: list[JournalEntry]
    cost: float
    seconds: float
    stop_reason: str | None

    @property
    def succeeded(self) -> bool:
        return self.passed


def build_campaign_report(job_id: str, state: dict[str, Any], head_sha: str, spent: float,
                          seconds: float) -> CampaignReport:
    measurements: list[Measurement] = state.get("measurements", [])
    passed = bool(state.get("goal_met"))
    return CampaignReport(
        job_id=job_id, status="succeeded" if passed else "failed", branch=state["branch"],
        base_sha=state["base_sha"], head_sha=head_sha, figures=[m.figure for m in measurements], passed=passed,
        iterations=state.get("journal", []), cost=round(spent, 6), seconds=round(seconds, 1),
        stop_reason=state.get("stop_reason"))
