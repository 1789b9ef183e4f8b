"""Running instances as Shipyard jobs, grading what they produced, and keeping the results.

Each instance is one job: the problem statement is the task, the base commit its base.
Only when the job has finished are the hidden tests applied (grading.py). Results go to
the output directory as they come, so a run stopped half-way resumes where it stopped:
instances with a result are skipped, and a job interrupted mid-way continues from its
checkpoint. The output directory is also the Shipyard state directory of the jobs
(`SHIPYARD_STATE_DIR=<output> shipyard show <job>`), which keeps it out of the agents'
sight in bubblewrap sandboxes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.apps.evaluation.grading import Grade, PytestRunner, TestRunner, grade
from orchestrator.apps.evaluation.instances import Instance
from orchestrator.apps.evaluation.results import (
    EvalReport,
    InstanceResult,
    read_result,
    summarize,
    write_report,
    write_result,
)
from orchestrator.config.settings import Settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, Task
from sandboxes.base import Sandbox, SandboxSpec
from sandboxes.git.branches import branch_name
from sandboxes.git.repo import GitRepo
from sandboxes.select import select_backend

log = logging.getLogger(__name__)

Progress = Callable[[Instance, InstanceResult], None]


class EvalError(RuntimeError):
    """An evaluation that cannot go on as asked; the message says what to do."""


class EvalOptions(BaseModel):
    output: Path
    workers: int = Field(1, ge=1, le=64, description="instances run at once")
    repos_dir: Path | None = Field(None, description="local clones at <repos_dir>/<owner>/<name>")
    gold: bool = Field(False, description="grade the instances' reference patches instead of running agents")
    max_cost: float | None = Field(None, ge=0, description="USD per instance's job")
    test_timeout: float = Field(1800, gt=0, description="seconds for the hidden tests of one instance")


class RunInfo(BaseModel):
    """What a results directory was run with: a re-run must match it, or results would mix."""

    mode: Literal["agents", "gold"]
    models: dict[str, str]

    def describe(self) -> str:
        if self.mode == "gold":
            return "a run of the reference patches"
        return "a run with models " + ", ".join(f"{role}={model}" for role, model in self.models.items())


class EvalRunner:
    def __init__(self, settings: Settings, options: EvalOptions, instances_file: Path,
                 test_runner: TestRunner | None = None):
        self.options = options
        self.output = options.output.resolve()
        self.instances_file = instances_file.resolve()
        self.test_runner = test_runner or PytestRunner()
        self.backend = select_backend(settings.sandbox.backend, settings.sandbox.image, hide=(self.output,))
        # The jobs use the very backend chosen here, and keep their state with the results.
        sandbox = settings.sandbox.model_copy(update={"backend": self.backend.name})
        self.settings = settings.model_copy(update={"state_dir": self.output, "database_url": None,
                                                    "sandbox": sandbox})
        self.mode: Literal["agents", "gold"] = "gold" if options.gold else "agents"
        self.director = Director(self.settings)

    # -- the whole run -------------------------------------------------------------

    def run(self, instances: list[Instance], progress: Progress | None = None) -> EvalReport:
        """Run every instance without a finished result, `workers` at a time; the report of them all."""
        self._check_run_info()
        pending = [i for i in instances if not self.done(i)]
        pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="eval")
        futures: dict[Future[InstanceResult], Instance] = {pool.submit(self.run_instance, i): i for i in pending}
        try:
            for future in as_completed(futures):
                if progress is not None:
                    progress(futures[future], future.result())
                write_report(self.output, self.report(instances))
        except KeyboardInterrupt:
            # Running instances finish (or are killed by a second Ctrl-C): either way they resume next time.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        report = self.report(instances)
        write_report(self.output, report)
        return report

    def done(self, instance: Instance) -> bool:
        result = read_result(self.output, instance.instance_id)
        return result is not None and result.finished

    def report(self, instances: list[Instance]) -> EvalReport:
        results = [r for i in instances if (r := read_result(self.output, i.instance_id)) is not None]
        return EvalReport(instances_file=str(self.instances_file), mode=self.mode, backend=self.backend.name,
                          models=self._models(), summary=summarize(len(instances), results), results=results)

    def _models(self) -> dict[str, Any]:
        if self.options.gold:
            return {}
        return {role: spec.model_dump(mode="json", include={"model", "base_url", "temperature"})
                for role, spec in self.settings.models.items()}

    def _check_run_info(self) -> None:
        info = RunInfo(mode=self.mode, models={role: spec["model"] for role, spec in self._models().items()})
        path = self.output / "eval.json"
        if path.is_file():
            earlier = RunInfo.model_validate_json(path.read_text())
            if earlier != info:
                raise EvalError(f"{self.output} holds the results of {earlier.describe()}, not {info.describe()}; "
                                "use another --output")
            return
        self.output.mkdir(parents=True, exist_ok=True)
        path.write_text(info.model_dump_json(indent=2) + "\n")

    # -- one instance --------------------------------------------------------------

    def run_instance(self, instance: Instance) -> InstanceResult:
        """Run, grade and record one instance; a failure is recorded as its error, never raised."""
        started = time.monotonic()
        try:
            result = self._gold(instance) if self.options.gold else self._solve(instance)
        except Exception as exc:  # one instance's failure must not stop the others: it is its result
            log.debug("instance %s failed", instance.instance_id, exc_info=True)
            result = InstanceResult(instance_id=instance.instance_id, status="error",
                                    error=" ".join(str(exc).split()) or type(exc).__name__)
        job_id = self._recorded_job_id(instance)
        if job_id is not None:
            status = self.director.get(job_id).status.value
            result = result.model_copy(update={"job_id": job_id, "job_status": status,
                                               **_usage(self.director, job_id)})
        result = result.model_copy(update={"wall_seconds": round(time.monotonic() - started, 1)})
        write_result(self.output, result)
        return result

    def _solve(self, instance: Instance) -> InstanceResult:
        repo, location = self._open_repo(instance)
        job = self._finished_job(instance, location)
        branch = branch_name(job.id)
        tests = self._grade(instance, repo, branch, None)
        return InstanceResult(instance_id=instance.instance_id, status="resolved" if tests.resolved else "unresolved",
                              branch=branch, tests=tests, model_patch=repo.diff(instance.base_commit, branch),
                              diff_stat=repo.diff_stat(instance.base_commit, branch).summary())

    def _gold(self, instance: Instance) -> InstanceResult:
        if instance.patch is None:
            raise EvalError("the instance has no `patch` to grade in --gold mode")
        repo, _ = self._open_repo(instance)
        branch = branch_name(f"gold-{instance.instance_id}")
        tests = self._grade(instance, repo, branch, instance.patch)
        return InstanceResult(instance_id=instance.instance_id, status="resolved" if tests.resolved else "unresolved",
                              branch=branch, tests=tests, model_patch=instance.patch)

    def _open_repo(self, instance: Instance) -> tuple[GitRepo, str]:
        """The instance's repository, and the local path its job is given: a URL is cloned once,
        into the output directory, rather than fetched by every step of every job."""
        cache = self.output / "repos"
        if instance.repo_path:
            local = (self.instances_file.parent / instance.repo_path).resolve()  # an absolute path stays as it is
            return GitRepo.open(local, cache), str(local)
        if self.options.repos_dir and (self.options.repos_dir / instance.repo).is_dir():
            local = (self.options.repos_dir / instance.repo).resolve()
            return GitRepo.open(local, cache), str(local)
        repo = GitRepo.open(instance.repo_url or f"https://github.com/{instance.repo}.git", cache)
        return repo, str(repo.git_dir)

    def _job_file(self, instance: Instance) -> Path:
        return self.output / "instances" / instance.instance_id / "job_id"

    def _recorded_job_id(self, instance: Instance) -> str | None:
        path = self._job_file(instance)
        return path.read_text().strip() if path.is_file() else None

    def _finished_job(self, instance: Instance, location: str) -> Job:
        """The instance's job run to its end: submitted now, or the one an earlier run started."""
        runner = self.director
        job_id = self._recorded_job_id(instance)
        if job_id is None:
            task = Task(instruction=instance.problem_statement, repo=location, base=instance.base_commit,
                        max_cost=self.options.max_cost, image=self._image(instance))
            job = runner.submit(task)
            path = self._job_file(instance)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(job.id + "\n")
        else:
            job = runner.get(job_id)
        if job.report is None:  # new, or stopped before its end: continue from its checkpoint
            job = runner.run(job.id)
        if job.report is None:
            raise EvalError(f"job {job.id} ended {job.status.value} without a report: {job.error}")
        return job

    def _grade(self, instance: Instance, repo: GitRepo, branch: str, patch: str | None) -> Grade:
        path = self.output / "worktrees" / "eval" / instance.instance_id
        workspace = repo.create_workspace(branch, instance.base_commit, path)
        try:
            workspace.reset(workspace.head())  # a grading cut short leaves its edits behind
            if patch is not None:
                workspace.apply(patch)
            sandbox = partial(self._sandbox, image=self._image(instance), label=instance.instance_id)
            return grade(instance, workspace, sandbox, self.test_runner, self.options.test_timeout,
                         self.output / "instances" / instance.instance_id / "tests.log")
        finally:
            repo.remove_workspace(workspace)

    @contextmanager
    def _sandbox(self, workspace: Path, image: str, label: str) -> Iterator[Sandbox]:
        settings = self.settings.sandbox
        spec = SandboxSpec(workspace=workspace, image=image, network=settings.network, env=dict(settings.env),
                           limits=settings.limits, labels={"eval": label})
        with self.backend.start(spec) as sandbox:
            if self.settings.setup_command:
                setup = sandbox.exec(self.settings.setup_command)
                if not setup.ok:
                    last = (setup.output.strip().splitlines() or ["no output"])[-1]
                    raise EvalError(f"the setup command failed with exit code {setup.exit_code}: {last}")
            yield sandbox

    def _image(self, instance: Instance) -> str:
        # Images are docker's; other backends run on the host's own toolchain.
        if instance.image and self.backend.name == "docker":
            return instance.image
        return self.settings.sandbox.image


def _usage(runner: Director, job_id: str) -> dict[str, Any]:
    """The job's model calls, tokens and cost: from its report, or from the agents that
    finished when it did not get that far."""
    report = runner.report(job_id)
    total = report.total if report is not None else runner.view(job_id).usage()
    return {"calls": total.calls, "input_tokens": total.input_tokens, "output_tokens": total.output_tokens,
            "cost": round(total.cost, 6)}

