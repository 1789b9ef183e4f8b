"""The job commands: run, demo, resume, jobs, show, logs, export, diff, approve, reject, replan, accept, cancel,
note."""

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
from rich.text import Text

from agents.plan import Plan
from agents.validation import problems
from orchestrator.apps.cli import options
from orchestrator.apps.cli.outcome import exit_code, last_line
from orchestrator.apps.cli.render import (
    campaign_progress,
    campaign_report_view,
    event_line,
    jobs_table,
    plan_table,
    progress_view,
    report_view,
    say_error,
    sent_back_lines,
    verification_line,
)
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import TestBaseline, TestCommandChosen, to_row
from orchestrator.store.jobs import Campaign, Job, JobStatus, Task

console = Console()

# Seconds an interrupted job's own thread gets to end it before the command ends it itself.
INTERRUPT_GRACE = 1.5


def _director(repo: Path | None = None) -> Director:
    return Director(load_settings(repo))


def _found(job_id: str) -> tuple[Director, Job]:
    """The director, and the job that `job_id` (or a prefix of it) names."""
    director = _director()
    return director, director.find(job_id)


# Its commands are the root's own (main.COMMANDS lists them).
app = typer.Typer()


@app.command("run", help="Run a task: plan, fan out to agents, integrate, test; ends with the report.")
@app.command("submit", help="Queue a task for the workers (`shipyard serve`) and print its job id at once.")
def run(
    ctx: typer.Context,
    instruction: str = options.INSTRUCTION,
    repo: Path = options.REPO,
    base: str = options.BASE,
    approve_plan: bool = options.APPROVE_PLAN,
    candidates: int = options.CANDIDATES,
    max_cost: float | None = options.MAX_COST,
    network: bool = options.NETWORK,
    db: str | None = options.DB,
) -> None:
    """`run` (here, with the live view) or `submit` (to the workers' queue) a task."""
    director = Director(options.settings(db, repo if options.is_local(repo) else None))
    job = director.submit(options.make_task(instruction, repo, base, approve_plan, candidates, max_cost, network))
    start(director, job, queue=ctx.info_name == "submit")


def start(director: Director, job: Job, queue: bool) -> None:
    """A job (or campaign) just submitted: queued for the workers, its id printed; else run here, live."""
    if queue:
        director.enqueue(job.id)
        director.close()
        typer.echo(job.id)
        return
    what = "campaign" if job.task.campaign else "job"
    console.print(f"{what} [bold]{job.id}[/] on {job.task.repo} from {job.task.base}", highlight=False)
    drive(director, job.id, lambda: director.run(job.id))


@app.command()
def demo(
    which: str = typer.Argument("job", help="job (the default) or campaign"),
    workdir: Path | None = typer.Option(None, "--dir", help="where to put the sample repo (default: a new temp dir)"),
    backend: str | None = typer.Option(None, "--backend", help="sandbox backend (default: from the configuration)"),
) -> None:
    """The whole flow on a bundled sample repo, with a SCRIPTED model (no model endpoint needed): a job, or
    (`demo campaign`) a campaign of three iterations towards a goal its verifier checks."""
    from agents.scripted_model import ScriptedModelServer
    from orchestrator.apps.demo import (
        CAMPAIGN_GOAL,
        CAMPAIGN_REPO,
        CAMPAIGN_SCRIPT,
        CAMPAIGN_VERIFIER,
        INSTRUCTION,
        SCRIPT,
        demo_settings,
        make_sample_repo,
    )

    if which not in ("job", "campaign"):
        raise typer.BadParameter(f"'{which}': choose job or campaign", param_hint="WHICH")
    workdir = (workdir or Path(tempfile.mkdtemp(prefix="shipyard-demo-"))).resolve()
    script = CAMPAIGN_SCRIPT if which == "campaign" else SCRIPT
    console.print(Text.assemble(("This demo uses a scripted model:", "yellow bold"), f" every model answer is replayed "
                                f"from {script.name}. The sandboxes, git branches, tests and HTTP calls are real."))
    if which == "campaign":
        repo = make_sample_repo(workdir / "units", CAMPAIGN_REPO)
        # The verifier is the campaign's test: the unit tests fail until its goal holds.
        task = Task(instruction=CAMPAIGN_GOAL, repo=str(repo), base="main", test_command="true",
                    campaign=Campaign(verifier=CAMPAIGN_VERIFIER, options=2))
        check = CAMPAIGN_VERIFIER
    else:
        repo = make_sample_repo(workdir / "inventory")
        task, check = Task(instruction=INSTRUCTION, repo=str(repo), base="main"), "python3 -m pytest -q"
    with ScriptedModelServer(script) as server:
        director = Director(demo_settings(workdir, server.base_url, backend))
        job = director.submit(task)
        console.print(f"sample repo: {repo}\ntask: {task.instruction}\n{which} [bold]{job.id}[/]")
        drive(director, job.id, lambda: director.run(job.id), exit_at_end=False)
    final = director.get(job.id)
    console.print(
        f"\nSee for yourself:\n  cd {repo}\n  git log --oneline --graph shipyard/{job.id}\n"
        f"  git checkout shipyard/{job.id} && {check}\n"
        f"The demo's jobs, events and checkpoints are in {workdir / 'state'}; "
        f"`shipyard` commands read them with SHIPYARD_STATE_DIR={workdir / 'state'}"
    )
    raise typer.Exit(exit_code(final.status))


@app.command()
def resume(job_id: str = options.JOB_ID) -> None:
    """Continue a job whose process died, from its last checkpoint; finished work is not redone."""
    director, job = _found(job_id)
    drive(director, job.id, lambda: director.resume(job.id))


@app.command()
def approve(
    job_id: str = typer.Argument(..., help="the job waiting for approval"),
    plan_file: Path | None = typer.Option(None, "--plan", exists=True, help="a JSON file with an edited plan"),
) -> None:
    """Approve the plan of a waiting job (optionally an edited plan) and run it."""
    director, job = _found(job_id)
    plan = _edited_plan(plan_file) if plan_file else None
    drive(director, job.id, lambda: director.approve(job.id, plan))


def _edited_plan(path: Path) -> Plan:
    """The plan in `path`, checked before the job runs on with it."""
    try:
        return Plan.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not a readable JSON file ({exc})", param_hint="--plan") from None
    except ValidationError as exc:
        found = problems(exc, "plan")
        raise typer.BadParameter(f"{path} is not a valid plan: {found}", param_hint="--plan") from None


@app.command()
def reject(
    job_id: str = typer.Argument(..., help="the job waiting for approval"),
    reason: str = typer.Option("", "--reason", help="why, for the record"),
) -> None:
    """Reject the plan of a waiting job; the job ends."""
    director = _director()
    job = director.reject(director.find(job_id).id, reason)
    console.print(f"job {job.id}: {job.status.value}")


@app.command()
def replan(
    job_id: str = typer.Argument(..., help="the job waiting for approval"),
    note: str = typer.Argument(..., help="what is wrong with the plan: the planner gets it with the plan"),
) -> None:
    """Send the plan of a waiting job back to the planner with a note; the new plan waits for approval."""
    director, job = _found(job_id)
    drive(director, job.id, lambda: director.replan(job.id, note))


@app.command()
def jobs(status: JobStatus | None = typer.Option(None, "--status", help="only jobs in this status")) -> None:
    """List jobs, newest first."""
    console.print(jobs_table(_director().list(status)))


@app.command()
def show(job_id: str = options.JOB_ID) -> None:
    """Show a job: its task, plan, status and report."""
    director, job = _found(job_id)
    console.print(Text.assemble(("job ", ""), (job.id, "bold"), f"  {job.status.label}\nrepo {job.task.repo} from "
                                f"{job.task.base}\ntask: {job.task.instruction}"))
    if job.error:
        console.print(Text(job.error, style="red"))
    if director.report(job.id) is None:  # under way: what it verifies with, from its events
        for event in director.events(job.id, kinds=(TestCommandChosen, TestBaseline)):
            if isinstance(event, TestCommandChosen | TestBaseline):
                console.print(verification_line(event))
    for line in sent_back_lines(director.view(job.id)):
        console.print(line)
    plan = director.plan(job.id)
    if plan:
        console.print(plan_table(plan))
    _report(director, job.id)


def _report(director: Director, job_id: str) -> None:
    report = director.report(job_id)
    if report:
        console.print(report_view(report))
    campaign = director.campaign_report(job_id)
    if campaign:
        console.print(campaign_report_view(campaign))


@app.command()
def logs(
    job_id: str = options.JOB_ID,
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new events until the job ends"),
) -> None:
    """Print the job's events: every agent step, test run, review and merge."""
    director, job = _found(job_id)
    if not follow:
        for event in director.events(job.id):
            console.print(event_line(event))
        return
    for event in director.follow(job.id, until=lambda: director.settled(job.id)):
        console.print(event_line(event))


@app.command()
def export(
    job_id: str = options.JOB_ID,
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (default: stdout)"),
) -> None:
    """Write the job's whole trajectory (every event) as JSON Lines."""
    director, job = _found(job_id)
    lines = [json.dumps({"id": event.id, **to_row(event)}) for event in director.events(job.id)]
    text = "\n".join(lines) + "\n"
    if output:
        try:
            output.write_text(text)
        except OSError as exc:
            raise typer.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="--output") from None
        console.print(f"wrote {len(lines)} events to {output}")
    else:
        typer.echo(text, nl=False)


@app.command()
def diff(job_id: str = options.JOB_ID) -> None:
    """Show the job branch's changes against where it started."""
    director, job = _found(job_id)
    console.print(Syntax(director.diff(job.id), "diff", background_color="default"))


@app.command()
def accept(
    job_id: str = typer.Argument(..., help="a succeeded job"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Merge the job branch into the base branch of your repository."""
    director, job = _found(job_id)
    if not yes:
        typer.confirm(f"Merge shipyard/{job.id} into {job.task.base} of {job.task.repo}?", abort=True)
    result = director.accept(job.id)
    if not result.ok:
        console.print(Text.assemble(("not merged: ", "red"), f"{result.message}; merge shipyard/{job.id} by hand "
                                    "to resolve them"))
        raise typer.Exit(1)
    console.print(f"merged shipyard/{job.id} into {job.task.base} ({result.sha})", highlight=False)


@app.command()
def retry(
    job_id: str = typer.Argument(..., help="a failed job"),
    subtasks: list[str] | None = typer.Argument(None, help="the subtasks to run again (default: every failed one)"),
) -> None:
    """Run a failed job's failed subtasks again; what succeeded stays, earlier attempts keep their branches."""
    director, job = _found(job_id)
    drive(director, job.id, lambda: director.retry(job.id, subtasks or None))


@app.command()
def cancel(job_id: str = options.JOB_ID) -> None:
    """Cancel a job; its agents stop at their next step and its branches stay."""
    director = _director()
    job = director.cancel(director.find(job_id).id)
    console.print(f"job {job.id}: {job.status.value}")


@app.command()
def note(
    job_id: str = options.JOB_ID,
    text: str = typer.Argument(..., help="the note, added to the prompts of agents that start after it"),
) -> None:
    """Send a note to a job's agents."""
    director = _director()
    director.note(director.find(job_id).id, text)
    console.print("noted")


@app.command(hidden=True)
def work(
    job_id: str = typer.Argument(...),
    action: str = typer.Option("run", "--action", help="run; answer (the director's recorded answer to its plan); "
                               "retry (its failed subtasks)"),
    subtasks: str = typer.Option("", "--subtasks", help="retry: these subtasks only, comma-separated"),
) -> None:
    """Run, answer or retry a job without a live view (what background launches use)."""
    director, job = _found(job_id)
    if action == "answer":
        job = director.answer(job.id)
    elif action == "retry":
        job = director.retry(job.id, [s for s in subtasks.split(",") if s] or None)
    else:
        job = director.run(job.id)
    console.print(f"job {job.id}: {job.status.value}")


def _interrupted(director: Director, job_id: str, thread: threading.Thread) -> None:
    """Ctrl-C (or SIGTERM): stop the job's work at once, keep everything it did, and say how to go on."""
    reason = director.interrupt(job_id, grace=lambda: thread.join(INTERRUPT_GRACE))
    console.print()
    say_error(f"job {job_id} {reason}")
    raise typer.Exit(130)


def drive(director: Director, job_id: str, work, exit_at_end: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Run `work` in a thread while showing the job's live progress; then the plan or report."""
    view = director.view(job_id)
    shown = campaign_progress if director.get(job_id).task.campaign else progress_view
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - shown below, after the live view closes
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"job-{job_id}", daemon=True)
    thread.start()
    try:
        with Live(shown(view), console=console, refresh_per_second=8, transient=False) as live:
            for event in director.follow(job_id, after=view.cursor, poll=0.1, until=lambda: not thread.is_alive()):
                view.apply(event)
                if isinstance(event, TestCommandChosen | TestBaseline):
                    live.console.print(verification_line(event))  # said once, above the live table
                live.update(shown(view))
    except KeyboardInterrupt:
        _interrupted(director, job_id, thread)
    console.print()
    thread.join()
    if failure:
        raise failure[0]
    job = director.get(job_id)
    if job.status == JobStatus.AWAITING_APPROVAL:
        plan = director.plan(job_id)
        if plan:
            console.print(plan_table(plan))
        console.print(Text.assemble("The plan waits for you: ", (f"shipyard approve {job_id}", "bold"), ", ",
                                    (f"shipyard reject {job_id}", "bold"), " or ",
                                    (f'shipyard replan {job_id} "what is wrong"', "bold")))
        return
    if job.status == JobStatus.AWAITING_BUDGET:
        console.print(Text.assemble("The campaign's budget is spent; it waits for you: ",
                                    (f"shipyard campaign topup {job_id} USD", "bold")))
        return
    _report(director, job_id)
    console.print(last_line(job), soft_wrap=True)  # the last word: what happened and why, never a table's border
    if exit_at_end:
        raise typer.Exit(exit_code(job.status))
