"""The job commands: run, demo, resume, jobs, show, logs, export, diff, approve, reject, accept, cancel, note."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.syntax import Syntax

from agents.plan import Plan
from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.cli import options
from orchestrator.apps.cli.render import ProgressView, event_line, jobs_table, plan_table, report_view
from orchestrator.apps.demo import INSTRUCTION, SCRIPT, demo_settings, make_sample_repo
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, JobStatus, Task

console = Console()


def _runner(repo: Path | None = None) -> Director:
    return Director(load_settings(repo))


def _job(runner: Director, job_id: str) -> Job:
    return runner.jobs.find(job_id)


def register(app: typer.Typer) -> None:
    for command in (run, demo, resume, jobs, show, logs, export, diff, approve, reject, accept, retry, cancel,
                    note):
        app.command()(command)
    app.command(hidden=True)(work)


def run(
    instruction: str = options.INSTRUCTION,
    repo: Path = options.REPO,
    base: str = options.BASE,
    approve_plan: bool = options.APPROVE_PLAN,
    candidates: int = options.CANDIDATES,
    max_cost: float | None = options.MAX_COST,
    network: bool = options.NETWORK,
) -> None:
    """Run a task: plan, fan out to agents, integrate, test; ends with the report."""
    runner = _runner(repo if options.is_local(repo) else None)
    job = runner.submit(options.make_task(instruction, repo, base, approve_plan, candidates, max_cost, network))
    console.print(f"job [bold]{job.id}[/] on {repo} from {job.task.base}")
    _drive(runner, job.id, lambda: runner.run(job.id))


def demo(
    workdir: Path | None = typer.Option(None, "--dir", help="where to put the sample repo (default: a new temp dir)"),
    backend: str | None = typer.Option(None, "--backend", help="sandbox backend (default: from the configuration)"),
) -> None:
    """The whole flow on a bundled sample repo, with a SCRIPTED model (no model endpoint needed)."""
    workdir = (workdir or Path(tempfile.mkdtemp(prefix="shipyard-demo-"))).resolve()
    console.print(
        "[yellow bold]This demo uses a scripted model:[/] every model answer is replayed from "
        f"{SCRIPT.name}. The sandboxes, git branches, tests and HTTP calls are real."
    )
    repo = make_sample_repo(workdir / "inventory")
    with ScriptedModelServer(SCRIPT) as server:
        runner = Director(demo_settings(workdir, server.base_url, backend))
        job = runner.submit(Task(instruction=INSTRUCTION, repo=str(repo), base="main"))
        console.print(f"sample repo: {repo}\ntask: {INSTRUCTION}\njob [bold]{job.id}[/]")
        _drive(runner, job.id, lambda: runner.run(job.id), exit_at_end=False)
    final = runner.jobs.get(job.id)
    console.print(
        f"\nSee for yourself:\n  cd {repo}\n  git log --oneline --graph shipyard/{job.id}\n"
        f"  git checkout shipyard/{job.id} && python3 -m pytest -q\n"
        f"The demo's jobs, events and checkpoints are in {workdir / 'state'}; "
        f"`shipyard` commands read them with SHIPYARD_STATE_DIR={workdir / 'state'}"
    )
    raise typer.Exit(0 if final.status == JobStatus.SUCCEEDED else 1)


def resume(job_id: str = typer.Argument(..., help="the job (an id or its prefix)")) -> None:
    """Continue a job whose process died, from its last checkpoint; finished work is not redone."""
    runner = _runner()
    job = _job(runner, job_id)
    _drive(runner, job.id, lambda: runner.run(job.id))


def approve(
    job_id: str = typer.Argument(..., help="the job waiting for approval"),
    plan_file: Path | None = typer.Option(None, "--plan", exists=True, help="a JSON file with an edited plan"),
) -> None:
    """Approve the plan of a waiting job (optionally an edited plan) and run it."""
    runner = _runner()
    job = _job(runner, job_id)
    plan = _edited_plan(plan_file) if plan_file else None
    _drive(runner, job.id, lambda: runner.approve(job.id, plan))


def _edited_plan(path: Path) -> dict:
    """The plan in `path`, checked before the job runs on with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        Plan.model_validate(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not a readable JSON file ({exc})", param_hint="--plan") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(f"{path} is not a valid plan: {problems}", param_hint="--plan") from None
    return data


def reject(
    job_id: str = typer.Argument(..., help="the job waiting for approval"),
    reason: str = typer.Option("", "--reason", help="why, for the record"),
) -> None:
    """Reject the plan of a waiting job; the job ends."""
    runner = _runner()
    job = runner.reject(_job(runner, job_id).id, reason)
    console.print(f"job {job.id}: {job.status.value}")


def jobs(status: JobStatus | None = typer.Option(None, "--status", help="only jobs in this status")) -> None:
    """List jobs, newest first."""
    console.print(jobs_table(_runner().jobs.list(status)))


def show(job_id: str = typer.Argument(..., help="the job (an id or its prefix)")) -> None:
    """Show a job: its task, plan, status and report."""
    runner = _runner()
    job = _job(runner, job_id)
    console.print(f"job [bold]{job.id}[/]  {job.status.value}\nrepo {job.task.repo} from {job.task.base}\n"
                  f"task: {job.task.instruction}")
    if job.error:
        console.print(f"[red]{job.error}[/]")
    plans = [e for e in runner.events.list(job.id) if e.kind in ("plan.ready", "plan.edited")]
    if plans:
        console.print(plan_table(plans[-1].payload["plan"]))
    report = runner.report(job.id)
    if report:
        console.print(report_view(report))


def logs(
    job_id: str = typer.Argument(..., help="the job (an id or its prefix)"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events until the job ends"),
) -> None:
    """Print the job's events: every agent step, test run, review and merge."""
    runner = _runner()
    job = _job(runner, job_id)
    if not follow:
        for event in runner.events.list(job.id):
            console.print(event_line(event))
        return
    for event in runner.events.follow(job.id, until=lambda: _settled(runner, job.id)):
        console.print(event_line(event))


def export(
    job_id: str = typer.Argument(..., help="the job (an id or its prefix)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (default: stdout)"),
) -> None:
    """Write the job's whole trajectory (every event) as JSON Lines."""
    runner = _runner()
    job = _job(runner, job_id)
    lines = [event.model_dump_json() for event in runner.events.list(job.id)]
    text = "\n".join(lines) + "\n"
    if output:
        try:
            output.write_text(text)
        except OSError as exc:
            raise typer.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="--output") from None
        console.print(f"wrote {len(lines)} events to {output}")
    else:
        typer.echo(text, nl=False)


def diff(job_id: str = typer.Argument(..., help="the job (an id or its prefix)")) -> None:
    """Show the job branch's changes against where it started."""
    runner = _runner()
    job = _job(runner, job_id)
    report = runner.report(job.id)
    if report is None:
        raise typer.BadParameter(f"job {job.id} has no result yet ({job.status.value})")
    repo = runner._open_repo(job.task.repo)
    console.print(Syntax(repo.diff(report.base_sha, report.job_branch), "diff", background_color="default"))


def accept(
    job_id: str = typer.Argument(..., help="a succeeded job"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Merge the job branch into the base branch of your repository."""
    runner = _runner()
    job = _job(runner, job_id)
    if not yes:
        typer.confirm(f"Merge shipyard/{job.id} into {job.task.base} of {job.task.repo}?", abort=True)
    result = runner.accept(job.id)
    if not result.ok:
        console.print(f"[red]not merged:[/] {result.message}; merge shipyard/{job.id} by hand to resolve them")
        raise typer.Exit(1)
    console.print(f"merged shipyard/{job.id} into {job.task.base} ({result.sha})")


def retry(
    job_id: str = typer.Argument(..., help="a failed job"),
    subtasks: list[str] | None = typer.Argument(None, help="the subtasks to run again (default: every failed one)"),
) -> None:
    """Run a failed job's failed subtasks again; what succeeded stays, earlier attempts keep their branches."""
    runner = _runner()
    job = _job(runner, job_id)
    _drive(runner, job.id, lambda: runner.retry(job.id, subtasks or None))


def cancel(job_id: str = typer.Argument(..., help="the job (an id or its prefix)")) -> None:
    """Cancel a job; its agents stop at their next step and its branches stay."""
    runner = _runner()
    job = runner.cancel(_job(runner, job_id).id)
    console.print(f"job {job.id}: {job.status.value}")


def note(
    job_id: str = typer.Argument(..., help="the job (an id or its prefix)"),
    text: str = typer.Argument(..., help="the note, added to the prompts of agents that start after it"),
) -> None:
    """Send a note to a job's agents."""
    runner = _runner()
    runner.note(_job(runner, job_id).id, text)
    console.print("noted")


def work(
    job_id: str = typer.Argument(...),
    action: str = typer.Option("run", "--action", help="run, approve, reject or retry (the failed subtasks)"),
    plan_json: str | None = typer.Option(None, "--plan-json", help="an edited plan, with --action approve"),
    reason: str = typer.Option("", "--reason", help="with --action reject"),
) -> None:
    """Run, approve or reject a job without a live view (what background launches use)."""
    runner = _runner()
    job = _job(runner, job_id)
    if action == "approve":
        job = runner.approve(job.id, json.loads(plan_json) if plan_json else None)
    elif action == "reject":
        job = runner.reject(job.id, reason)
    elif action == "retry":
        job = runner.retry(job.id)
    else:
        job = runner.run(job.id)
    console.print(f"job {job.id}: {job.status.value}")


def _drive(runner: Director, job_id: str, work, exit_at_end: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Run `work` in a thread while showing the job's live progress; then the plan or report."""
    view = ProgressView(job_id)
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - shown below, after the live view closes
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"job-{job_id}", daemon=True)
    thread.start()
    after = max((e.id or 0 for e in runner.events.list(job_id)), default=0)
    with Live(view.render(), console=console, refresh_per_second=8, transient=False) as live:
        for event in runner.events.follow(job_id, after=after, poll=0.1, until=lambda: not thread.is_alive()):
            view.add(event)
            live.update(view.render())
    console.print()
    thread.join()
    if failure:
        raise failure[0]
    job = runner.jobs.get(job_id)
    if job.status == JobStatus.AWAITING_APPROVAL:
        plan = [e for e in runner.events.list(job_id) if e.kind == "plan.ready"][-1].payload["plan"]
        console.print(plan_table(plan))
        console.print(f"The plan waits for you: [bold]shipyard approve {job_id}[/] or [bold]shipyard reject {job_id}[/]")
        return
    report = runner.report(job_id)
    if report:
        console.print(report_view(report))
    elif job.error:
        console.print(f"[red]job {job_id} {job.status.value}:[/] {job.error}")
    if exit_at_end:
        raise typer.Exit(0 if job.status == JobStatus.SUCCEEDED else 1)


def _settled(runner: Director, job_id: str) -> bool:
    status = runner.jobs.get(job_id).status
    return status.finished or status == JobStatus.AWAITING_APPROVAL
