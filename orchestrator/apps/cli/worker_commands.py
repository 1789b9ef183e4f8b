"""The background-job commands: serve, submit, result, inbox, prune."""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading
import time

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.apps.cli import options
from orchestrator.apps.cli.outcome import exit_code, last_line
from orchestrator.apps.cli.render import report_view, styled
from orchestrator.runtime.director import Director
from tui.format import age

console = Console()
# Its commands are the root's own (main.COMMANDS lists them).
app = typer.Typer()


@app.command()
def serve(
    db: str | None = options.DB,
    concurrency: int | None = typer.Option(None, "--concurrency", "-k", min=1, max=64,
                                           help="jobs run at once (default: workers.concurrency)"),
) -> None:
    """Run a worker: take queued jobs and run them, resuming the jobs of workers that died."""
    from orchestrator.runtime.worker import (
        Worker,  # starts nothing, but loads DBOS: only workers need it
    )

    settings = options.settings(db)
    if concurrency is not None:
        settings = settings.model_copy(update={"workers": settings.workers.model_copy(
            update={"concurrency": concurrency})})
    logging.getLogger("orchestrator.runtime.worker").setLevel(logging.INFO)
    worker = Worker(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # A worker runs for days: when one seems stuck, its threads' stacks say where, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    console.print(f"worker [bold]{worker.id}[/] on {settings.database_url or settings.state_dir}, "
                  f"{settings.workers.concurrency} job(s) at a time; Ctrl-C stops it (running jobs go back "
                  "to the queue; `kill -USR1` prints what its threads are doing)", highlight=False)
    # Its log is often a file: what follows (stderr) must come after this line, not before it.
    sys.stdout.flush()
    worker.serve(stop)


@app.command()
def result(
    job_id: str = options.JOB_ID,
    wait: bool = typer.Option(False, "--wait", help="wait until the job finishes (or waits for approval)"),
    db: str | None = options.DB,
) -> None:
    """Print a job's report. Exit 0 if it succeeded verified, 3 unverified, 4 partially, 1 if it ended otherwise,
    5 if it has not ended (the README's table)."""
    director = Director(options.settings(db))
    job = director.find(job_id)
    if wait and not director.settled(job.id):
        for _ in director.follow(job.id, until=lambda: director.settled(job.id)):
            pass
        job = director.get(job.id)
    report = director.report(job.id)
    if report is not None:
        console.print(report_view(report))
    console.print(last_line(job), soft_wrap=True)  # one line, however long
    raise typer.Exit(exit_code(job.status))


@app.command()
def inbox(
    show_all: bool = typer.Option(False, "--all", help="read ones too"),
    db: str | None = options.DB,
) -> None:
    """What needs you: jobs that finished, failed or wait for your approval. Shown entries are marked read."""
    box = Director(options.settings(db)).inbox()
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


@app.command("prune")
def prune_command(
    older_than: str = typer.Option(..., "--older-than", help="age of the finished jobs to forget, e.g. 30d, 12h"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would go"),
    db: str | None = options.DB,
) -> None:
    """Forget old finished jobs (events, checkpoints, reports); jobs whose branches exist stay."""
    from orchestrator.apps.github.records import prune_github
    from orchestrator.runtime.prune import parse_age

    try:
        seconds = parse_age(older_than)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    director = Director(options.settings(db))
    outcome = director.prune(seconds, dry_run)
    if not dry_run:
        # The GitHub App's deliveries follow its own retention rule (they are kept while GitHub may redeliver).
        prune_github(director.records.engine)
    for job_id, why in outcome.kept.items():
        console.print(f"kept {job_id}: {why}", highlight=False)
    verb = "would forget" if dry_run else "forgot"
    console.print(f"{verb} {len(outcome.pruned)} job(s)" + (f": {', '.join(outcome.pruned)}" if outcome.pruned
                                                            else ""), highlight=False)
