"""The background-job commands: serve, submit, result, inbox, prune."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.apps.cli import options
from orchestrator.apps.cli.render import report_view, styled
from orchestrator.apps.github.records import prune_github
from orchestrator.config.settings import Settings, load_settings
from orchestrator.runtime.director import Director
from orchestrator.runtime.prune import parse_age
from orchestrator.store.jobs import JobStatus
from tui.format import age

console = Console()

DB_HELP = "postgresql://... to share jobs with workers on other machines (default: the configuration's database_url)"


def register(app: typer.Typer) -> None:
    for command in (serve, submit, result, inbox):
        app.command()(command)
    app.command(name="prune")(prune_command)


def _settings(db: str | None, repo: Path | None = None, **overrides: Any) -> Settings:
    if db:
        overrides["database_url"] = db
    return load_settings(repo, **overrides)


def serve(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    concurrency: int | None = typer.Option(None, "--concurrency", "-k", min=1, max=64,
                                           help="jobs run at once (default: workers.concurrency)"),
) -> None:
    """Run a worker: take queued jobs and run them, resuming the jobs of workers that died."""
    from orchestrator.runtime.worker import (
        Worker,  # starts nothing, but loads DBOS: only workers need it
    )

    settings = _settings(db)
    if concurrency is not None:
        settings = settings.model_copy(update={"workers": settings.workers.model_copy(
            update={"concurrency": concurrency})})
    logging.getLogger("orchestrator.runtime.worker").setLevel(logging.INFO)
    worker = Worker(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"worker [bold]{worker.id}[/] on {settings.database_url or settings.state_dir}, "
                  f"{settings.workers.concurrency} job(s) at a time; Ctrl-C stops it (running jobs go back "
                  "to the queue)", highlight=False)
    worker.serve(stop)


def submit(
    instruction: str = options.INSTRUCTION,
    repo: Path = options.REPO,
    base: str = options.BASE,
    approve_plan: bool = options.APPROVE_PLAN,
    candidates: int = options.CANDIDATES,
    max_cost: float | None = options.MAX_COST,
    network: bool = options.NETWORK,
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Queue a task for the workers (`shipyard serve`) and print its job id at once."""
    director = Director(_settings(db, repo if options.is_local(repo) else None))
    job = director.submit(options.make_task(instruction, repo, base, approve_plan, candidates, max_cost, network))
    director.enqueue(job.id)
    director.close()
    typer.echo(job.id)


def result(
    job_id: str = typer.Argument(..., help="the job (an id or its prefix)"),
    wait: bool = typer.Option(False, "--wait", help="wait until the job finishes (or waits for approval)"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Print a job's report. Exit 0 if it succeeded, 1 if it ended otherwise, 3 if it has not ended."""
    director = Director(_settings(db))
    job = director.find(job_id)
    if wait and not director.settled(job.id):
        for _ in director.follow(job.id, until=lambda: director.settled(job.id)):
            pass
        job = director.get(job.id)
    report = director.report(job.id)
    if report is not None:
        console.print(report_view(report))
    console.print(f"job {job.id}: ", styled(job.status.value), f" {job.error or ''}".rstrip(), sep="")
    if not job.status.finished:
        raise typer.Exit(3)
    raise typer.Exit(0 if job.status == JobStatus.SUCCEEDED else 1)


def inbox(
    show_all: bool = typer.Option(False, "--all", help="read ones too"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """What needs you: jobs that finished, failed or wait for your approval. Shown entries are marked read."""
    box = Director(_settings(db)).inbox()
    entries = box.entries(unread_only=not show_all)
    if not entries:
        console.print("nothing new" if not show_all else "no notifications yet")
        return
    table = Table("age", "job", "status", "message", expand=True)
    for entry in entries:
        table.add_row(age(entry.created_at, time.time()), entry.job_id, styled(entry.status), entry.message,
                      style="dim" if entry.read else "")
    console.print(table)
    box.mark_read([e.id for e in entries if not e.read])


def prune_command(
    older_than: str = typer.Option(..., "--older-than", help="age of the finished jobs to forget, e.g. 30d, 12h"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would go"),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Forget old finished jobs (events, checkpoints, reports); jobs whose branches exist stay."""
    try:
        seconds = parse_age(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    director = Director(_settings(db))
    outcome = director.prune(seconds, dry_run)
    if not dry_run:
        # The GitHub App's deliveries follow its own retention rule (they are kept while GitHub may redeliver).
        prune_github(director.records.engine)
    for job_id, why in outcome.kept.items():
        console.print(f"kept {job_id}: {why}", highlight=False)
    verb = "would forget" if dry_run else "forgot"
    console.print(f"{verb} {len(outcome.pruned)} job(s)" + (f": {', '.join(outcome.pruned)}" if outcome.pruned
                                                            else ""), highlight=False)
