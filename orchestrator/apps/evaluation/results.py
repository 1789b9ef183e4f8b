"""What an evaluation records: a result per instance, the totals, and the files written from them.

In the output directory:
    instances/<id>/result.json   one instance's result; its presence means "done" on a re-run
    results.json                 every result (without the patches) and the totals
    results.md                   the same as a markdown table
    predictions.jsonl            the patches in SWE-bench's predictions format, so the official
                                 harness can grade the same work (swebench.harness.run_evaluation)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.apps.evaluation.grading import Grade

Status = Literal["resolved", "unresolved", "error"]


class InstanceResult(BaseModel):
    instance_id: str
    status: Status
    job_id: str | None = None
    job_status: str | None = None
    branch: str | None = None
    tests: Grade | None = None
    model_patch: str = Field("", description="what the agents changed, as a diff against the base commit")
    diff_stat: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    wall_seconds: float = 0.0
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def finished(self) -> bool:
        """Errors (a model endpoint down, a clone failing) are run again on the next run."""
        return self.status != "error"


class Summary(BaseModel):
    instances: int = Field(description="instances in the file (or the ones selected)")
    resolved: int
    unresolved: int
    errors: int
    not_run: int
    resolve_rate: float = Field(description="resolved / instances")
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    wall_seconds: float = Field(description="the instances' wall times added up")


class EvalReport(BaseModel):
    instances_file: str
    mode: Literal["agents", "gold"]
    backend: str
    models: dict[str, Any]
    summary: Summary
    results: list[InstanceResult]


def summarize(total: int, results: list[InstanceResult]) -> Summary:
    resolved = sum(r.status == "resolved" for r in results)
    return Summary(
        instances=total, resolved=resolved, unresolved=sum(r.status == "unresolved" for r in results),
        errors=sum(r.status == "error" for r in results), not_run=total - len(results),
        resolve_rate=round(resolved / total, 4) if total else 0.0, calls=sum(r.calls for r in results),
        input_tokens=sum(r.input_tokens for r in results), output_tokens=sum(r.output_tokens for r in results),
        cost=round(sum(r.cost for r in results), 6), wall_seconds=round(sum(r.wall_seconds for r in results), 1),
    )


def result_path(output: Path, instance_id: str) -> Path:
    return output / "instances" / instance_id / "result.json"


def read_result(output: Path, instance_id: str) -> InstanceResult | None:
    path = result_path(output, instance_id)
    return InstanceResult.model_validate_json(path.read_text()) if path.is_file() else None


def write_result(output: Path, result: InstanceResult) -> None:
    _write(result_path(output, result.instance_id), result.model_dump_json(indent=2) + "\n")


def write_report(output: Path, report: EvalReport) -> None:
    _write(output / "results.json", report.model_dump_json(indent=2, exclude={"results": {"__all__": {"model_patch"}}})
           + "\n")
    _write(output / "results.md", markdown(report))
    name = "shipyard" if report.mode == "agents" else "gold"
    predictions = [{"instance_id": r.instance_id, "model_name_or_path": name, "model_patch": r.model_patch}
                   for r in report.results if r.status != "error"]
    _write(output / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions))


def markdown(report: EvalReport) -> str:
    s = report.summary
    lines = [
        f"# Shipyard eval: {Path(report.instances_file).name}",
        "",
        f"**{s.resolved} of {s.instances} resolved ({s.resolve_rate:.1%})**; {s.unresolved} unresolved, "
        f"{s.errors} errors, {s.not_run} not run. {s.input_tokens + s.output_tokens:,} tokens in {s.calls} model "
        f"calls, ${s.cost:.4f}, {s.wall_seconds:.1f} s of instance wall time.",
        "",
        f"Mode: {report.mode}; sandbox: {report.backend}; models: {_models_line(report.models)}.",
        "",
        "| instance | result | FAIL_TO_PASS | PASS_TO_PASS | tokens | cost | wall time | job |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in report.results:
        f2p, p2p = (r.tests.f2p, r.tests.p2p) if r.tests else ("", "")
        outcome = r.status if r.status != "error" else f"error: {r.error}"
        if r.tests and r.tests.problem:
            outcome += f" ({r.tests.problem})"
        lines.append(f"| {r.instance_id} | {_cell(outcome)} | {f2p} | {p2p} | {r.tokens:,} | ${r.cost:.4f} | "
                     f"{r.wall_seconds:.1f} s | {r.job_id or ''} |")
    lines.append(f"| **total** | **{s.resolved}/{s.instances} resolved** | | | {s.input_tokens + s.output_tokens:,} | "
                 f"${s.cost:.4f} | {s.wall_seconds:.1f} s | |")
    return "\n".join(lines) + "\n"


def _models_line(models: dict[str, Any]) -> str:
    return ", ".join(f"{role} {spec.get('model')}" for role, spec in models.items()) or "none (reference patches)"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _write(path: Path, text: str) -> None:
    # Whole or not at all: a run stopped mid-write must not leave a result that reads as done.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
