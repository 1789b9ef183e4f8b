"""`shipyard eval`: run SWE-bench-style instances as jobs, grade them by their hidden tests, report."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.table import Column, Table

from agents.specs import ModelSpec
from orchestrator.apps.evaluation import mini_suite
from orchestrator.apps.evaluation.grading import PytestRunner
from orchestrator.apps.evaluation.instances import Instance, InstanceError, load_instances
from orchestrator.apps.evaluation.mini_suite import MiniSuiteError
from orchestrator.apps.evaluation.models_file import ModelsFileError, load_models_file
from orchestrator.apps.evaluation.results import EvalReport, InstanceResult
from orchestrator.config.settings import Settings, load_settings

if TYPE_CHECKING:  # the runner loads the sandboxes: imported when an evaluation runs
    from orchestrator.apps.evaluation.runner import EvalOptions, Progress

console = Console()

RESULT_STYLE = {"resolved": "green", "unresolved": "yellow", "error": "red"}


app = typer.Typer()  # its command is the root's own (main.COMMANDS)


@app.command("eval")
def eval_command(
    instances_file: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, metavar="INSTANCES.jsonl",
        help="SWE-bench instances, one JSON object a line, with the official fields"),
    mini_suite_flag: bool = typer.Option(
        False, "--mini-suite", help="the bundled 8-instance suite, with its scripted model unless --models is given"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help="instances run at once"),
    models: Path | None = typer.Option(
        None, "--models", exists=True, dir_okay=False,
        help="TOML file of \\[models.*] tables (docs/eval.md); default: the configured models"),
    output: Path = typer.Option(Path("eval-results"), "--output", "-o",
                                help="results go here; a re-run with the same directory resumes"),
    backend: str | None = typer.Option(None, "--backend", help="sandbox backend (default: from the configuration)"),
    repos: Path | None = typer.Option(
        None, "--repos", file_okay=False, help="local clones at REPOS/<owner>/<name>, used instead of cloning"),
    only: list[str] = typer.Option([], "--instance", "-i", help="run only this instance (repeatable)"),
    gold: bool = typer.Option(False, "--gold", help="grade the instances' reference patches: checks the "
                              "environment, no model involved"),
    max_cost: float | None = typer.Option(None, "--max-cost", min=0, help="USD budget of each instance's job"),
    python: str = typer.Option("python3", "--python", help="the interpreter that runs pytest in the sandbox"),
    test_timeout: float = typer.Option(1800, "--test-timeout", min=1, help="seconds for one instance's tests"),
) -> None:
    """Run SWE-bench-style instances as Shipyard jobs and grade them by their hidden tests."""
    from agents.scripted_model import ScriptedModelServer
    from orchestrator.apps.evaluation.runner import EvalError, EvalOptions

    if (instances_file is None) == (not mini_suite_flag):
        _fail("give an INSTANCES.jsonl file or --mini-suite (not both)")
    try:
        with ExitStack() as stack:
            settings = load_settings(Path.cwd())
            if backend:
                sandbox = settings.sandbox.model_copy(update={"backend": backend})
                settings = settings.model_copy(update={"sandbox": sandbox})
            if models is not None:
                chosen = load_models_file(models)
                settings = _with_models(settings, chosen.models, chosen.candidate_models)
            source = instances_file or mini_suite.INSTANCES  # exactly one of the two is given
            instances = _select(load_instances(source), only)
            repos_dir = repos.resolve() if repos else None
            if mini_suite_flag:
                repos_dir = mini_suite.materialize(output.resolve() / "mini-suite")
                if models is None and not gold:
                    console.print("[yellow bold]The mini-suite runs with a scripted model:[/] every model answer is "
                                  f"replayed from {mini_suite.SCRIPT.name}. Sandboxes, git, tests and HTTP are real.")
                    server = stack.enter_context(ScriptedModelServer(mini_suite.SCRIPT))
                    scripted = ModelSpec(base_url=server.base_url, model="scripted-mini-suite")
                    settings = _with_models(settings, {"default": scripted}, [])
            options = EvalOptions(output=output, workers=workers, repos_dir=repos_dir, gold=gold, max_cost=max_cost,
                                  test_timeout=test_timeout)
            report = _evaluate(settings, options, source, instances, python)
    except (InstanceError, ModelsFileError, EvalError, MiniSuiteError) as exc:
        _fail(str(exc))
    console.print(results_table(report))
    s = report.summary
    tokens = s.input_tokens + s.output_tokens
    console.print(f"[bold]{s.resolved} of {s.instances} resolved ({s.resolve_rate:.1%})[/]; {tokens:,} tokens, "
                  f"${s.cost:.4f}, {s.wall_seconds:.1f} s of instance time")
    out = output.resolve()
    console.print(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'predictions.jsonl'}")
    if not gold:
        console.print(f"the jobs: SHIPYARD_STATE_DIR={out} shipyard show <job>")
    raise typer.Exit(1 if s.errors else 0)


def _evaluate(settings: Settings, options: EvalOptions, source: Path, instances: list[Instance],
              python: str) -> EvalReport:
    from orchestrator.apps.evaluation.runner import EvalRunner

    runner = EvalRunner(settings, options, source, PytestRunner(python))
    done = sum(runner.done(i) for i in instances)
    workers = options.workers
    console.print(f"{len(instances)} instances from {source}: {done} done already, running {len(instances) - done} "
                  f"with {workers} worker{'s' * (workers != 1)} ({'reference patches' if options.gold else 'agents'}, "
                  f"{runner.backend.name} sandboxes)")
    return runner.run(instances, progress=_progress(len(instances) - done))


def _with_models(settings: Settings, models: dict[str, ModelSpec], candidates: list[ModelSpec]) -> Settings:
    return settings.model_copy(update={"models": models, "candidate_models": candidates})


def _select(instances: list[Instance], only: list[str]) -> list[Instance]:
    if not only:
        return instances
    known = {i.instance_id for i in instances}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise InstanceError(f"no instance {', '.join(unknown)} in the file")
    return [i for i in instances if i.instance_id in only]


def _progress(total: int) -> Progress:
    count = 0

    def show(instance: Instance, result: InstanceResult) -> None:
        nonlocal count
        count += 1
        detail = f"F2P {result.tests.f2p}, P2P {result.tests.p2p}" if result.tests else (result.error or "")
        style = RESULT_STYLE[result.status]
        console.print(f"[{count}/{total}] {instance.instance_id}  [{style}]{result.status}[/]  {detail}  "
                      f"{result.tokens:,} tokens  ${result.cost:.4f}  {result.wall_seconds:.1f} s", highlight=False)

    return show


def results_table(report: EvalReport) -> Table:
    # Narrow enough for an 80-column terminal; the job ids are in results.md.
    table = Table(Column("instance", no_wrap=True), "result", "F2P", "P2P", "tokens", "cost", "time",
                  title="shipyard eval")
    for r in report.results:
        f2p, p2p = (r.tests.f2p, r.tests.p2p) if r.tests else ("", "")
        table.add_row(r.instance_id, f"[{RESULT_STYLE[r.status]}]{r.status}[/]", f2p, p2p, f"{r.tokens:,}",
                      f"${r.cost:.4f}", f"{r.wall_seconds:.1f} s")
    return table


def _fail(message: str) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)
