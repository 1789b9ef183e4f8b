"""`shipyard campaign`: a goal and its verifier, pursued in iterations of jobs; `campaign topup` to go on."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.apps.cli import options
from orchestrator.apps.cli.job_commands import drive, start
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Campaign

app = typer.Typer()  # its command is the root's own (main.COMMANDS)


@app.command(context_settings={"allow_interspersed_args": True})
def campaign(
    words: list[str] = typer.Argument(..., help="the goal, in plain words; or `topup ID USD` to give a campaign "
                                      "waiting for budget more"),
    until: str | None = typer.Option(None, "--until", help="the verifier: a command that exits 0 once the goal "
                                     "holds, and prints how far it is (a number)"),
    figure: str = typer.Option("lower", "--figure", help="which way the verifier's number improves: lower or higher"),
    figure_pattern: str | None = typer.Option(None, "--figure-pattern", help="a regex that finds the number in the "
                                              "verifier's output (default: the last number of its last line)"),
    budget: float | None = typer.Option(None, "--budget", min=0, help="USD for the whole campaign; it pauses when "
                                        "spent, and `campaign topup` goes on"),
    iteration_budget: float | None = typer.Option(None, "--iteration-budget", min=0, help="USD for one iteration"),
    alternatives: int = typer.Option(1, "--options", min=1, max=4, help="alternative plans run side by side in each "
                                     "iteration; the one that moves the verifier furthest is kept"),
    stall: int = typer.Option(3, "--stall", min=1, help="iterations without progress after which it stops"),
    max_iterations: int = typer.Option(20, "--max-iterations", min=1),
    repo: Path = options.REPO,
    base: str = options.BASE,
    submit: bool = typer.Option(False, "--submit", help="queue it for the workers (`shipyard serve`) and print its id"),
    db: str | None = options.DB,
) -> None:
    """Pursue a goal over iterations of jobs on one branch, until its verifier says it holds."""
    if words[0] == "topup":
        _topup(words[1:], db)
        return
    if until is None:
        raise typer.BadParameter("a campaign needs its verifier: --until 'COMMAND'", param_hint="--until")
    if figure not in ("lower", "higher"):
        raise typer.BadParameter(f"'{figure}': choose lower or higher", param_hint="--figure")
    goal = " ".join(words)
    director = Director(options.settings(db, repo if options.is_local(repo) else None))
    task = options.make_task(goal, repo, base, False, 1, None, False).model_copy(update={"campaign": Campaign(
        verifier=until, figure=figure, figure_pattern=figure_pattern, budget=budget, iteration_budget=iteration_budget,
        options=alternatives, stall_after=stall, max_iterations=max_iterations)})
    start(director, director.submit(task), queue=submit)


def _topup(args: list[str], db: str | None) -> None:
    if len(args) != 2:
        raise typer.BadParameter("write `shipyard campaign topup ID USD`")
    try:
        amount = float(args[1])
    except ValueError:
        raise typer.BadParameter(f"'{args[1]}' is not an amount of USD") from None
    director = Director(options.settings(db))
    job = director.find(args[0])
    drive(director, job.id, lambda: director.topup(job.id, amount))
