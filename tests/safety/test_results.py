"""accept, prune and the job's results do exactly what they say."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from helpers import call, checkout_state, git, make_repo, plan_entry, subtask
from safekit import CHANGE, World, one_error_line

from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


def _index_hash(repo):  # noqa: ANN001, ANN202
    return git(repo, "rev-parse", "--git-path", "index"), (repo / ".git" / "index").read_bytes()


def test_accept_from_a_linked_worktree_merges_into_that_worktrees_branch(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    git(w.repo, "switch", "-q", "-c", "dev")
    linked = w.root / "repo-main"
    git(w.repo, "worktree", "add", "-q", str(linked), "main")
    primary_before, index_before = checkout_state(w.repo), (w.repo / ".git" / "index").read_bytes()
    dev_before = git(w.repo, "rev-parse", "dev")

    ran = w.shipyard("run", "add a note", "--repo", ".", cwd=linked)
    assert ran.returncode == 0, ran.stderr
    job = w.only_job()
    assert job.task.repo == str(linked) and job.task.base == "main"
    accepted = w.shipyard("accept", job.id, "--yes", cwd=linked)
    assert accepted.returncode == 0 and "into main" in accepted.stdout, accepted.stderr
    assert (linked / "NOTE.md").read_text() == "noted\n"
    assert git(w.repo, "show", "main:NOTE.md") == "noted\n"
    assert git(w.repo, "rev-parse", "dev") == dev_before and not (w.repo / "NOTE.md").exists()
    assert checkout_state(w.repo) == primary_before
    assert (w.repo / ".git" / "index").read_bytes() == index_before


def test_a_tag_or_a_detached_head_as_base_runs_and_accept_says_what_to_do(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    git(w.repo, "tag", "v1")
    assert w.shipyard("run", "add a note", "--repo", ".", "--base", "v1").returncode == 0
    job = w.only_job()
    refused = w.shipyard("accept", job.id, "--yes")
    line = one_error_line(refused.stderr)
    assert refused.returncode == 2 and "git switch -c" in line and f"shipyard/{job.id}" in line
    assert "_" not in line.split("error: ", 1)[1].split()[0], "no internal names"


def test_accept_lists_the_untracked_files_it_would_overwrite(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    assert w.shipyard("run", "add a note", "--repo", ".").returncode == 0
    job = w.only_job()
    (w.repo / "NOTE.md").write_text("mine\n")
    refused = w.shipyard("accept", job.id, "--yes")
    assert refused.returncode != 0 and "NOTE.md" in refused.stderr + refused.stdout
    assert (w.repo / "NOTE.md").read_text() == "mine\n", "the director's file is untouched"


def test_a_timed_out_test_run_says_so(world: Callable[..., World]) -> None:
    w = world(CHANGE, test_command="sleep 30", toml_extra="[sandbox.limits]\nexec_timeout = 1\n")
    ran = w.shipyard("run", "add a note", "--repo", ".")
    # It timed out at base as well, so nothing could tell: unverified, and the last line says why.
    assert ran.returncode == 3 and "the suite timed out, at base as well" in ran.stdout.splitlines()[-1], ran.stdout
    job = w.only_job()
    shown = w.shipyard("show", job.id)
    assert "timed out" in shown.stdout, shown.stdout


def test_prune_forgets_an_accepted_job_and_its_branches_and_keeps_unmerged_work(world: Callable[..., World]) -> None:
    another = {"match": {"role": "coder", "any_message_contains": "add another note"}, "repeat": True,
               "tool_calls": [call("create_file", path="OTHER.md", content="more\n"), call("submit", summary="more")]}
    w = world([{**CHANGE[0], "repeat": True}, another, *CHANGE[1:]])
    assert w.shipyard("run", "add a note", "--repo", ".").returncode == 0
    accepted = w.only_job()
    assert w.shipyard("accept", accepted.id, "--yes").returncode == 0
    assert w.shipyard("run", "add another note", "--repo", ".").returncode == 0
    other = next(j for j in w.director().list() if j.id != accepted.id)
    old = time.time() - 40 * 86400
    for job_id in (accepted.id, other.id):
        w.director().records.jobs.update(job_id, updated_at=old)
    pruned = w.shipyard("prune", "--older-than", "30d")
    assert pruned.returncode == 0, pruned.stderr
    assert f"kept {other.id}: its work is on branches not merged into main" in pruned.stdout
    assert [j.id for j in w.director().list()] == [other.id]
    assert git(w.repo, "for-each-ref", f"refs/heads/shipyard/{accepted.id}*") == ""


def test_error_lines_are_text_not_markup(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    shown = w.shipyard("show", "my[red]proj[/red]")
    assert shown.returncode == 2 and "my[red]proj[/red]" in one_error_line(shown.stderr)


def test_a_file_git_would_never_commit_is_refused_to_the_agent(world: Callable[..., World]) -> None:
    script = [
        plan_entry(subtask("s1", "build")),
        {"match": {"role": "coder", "last_role": "user"}, "tool_calls": [
            call("create_file", path="build/out.txt", content="ignored\n")]},
        {"match": {"role": "coder", "last_message_contains": "ignored by git"}, "tool_calls": [
            call("create_file", path="OUT.md", content="kept\n"), call("submit", summary="wrote OUT.md")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="ok")]},
    ]
    w = world(script, files={".gitignore": "build/\n"})
    ran = w.shipyard("run", "build it", "--repo", ".")
    assert ran.returncode == 0, ran.stderr
    job = w.only_job()
    refused = [e for e in w.director().events(job.id) if e.kind == "agent.tool_result" and not e.payload["ok"]]
    assert refused and "build/out.txt is ignored by git" in refused[0].payload["output"]
    assert git(w.repo, "show", f"shipyard/{job.id}:OUT.md") == "kept\n"
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED


def test_a_runaway_answer_is_bounded_in_the_log_and_in_later_requests(world: Callable[..., World]) -> None:
    script = [
        plan_entry(subtask("s1", "note")),
        {"match": {"role": "coder", "last_role": "user"}, "content": "x" * 5_000_000,
         "tool_calls": [call("create_file", path="NOTE.md", content="noted\n")]},
        *CHANGE[1:],
    ]
    w = world(script)
    assert w.shipyard("run", "add a note", "--repo", ".").returncode == 0
    job = w.only_job()
    contents = [len(e.payload["content"]) for e in w.director().events(job.id) if e.kind == "agent.message"]
    assert max(contents) <= 20_100
    later = [r for r in w.server.requests if r.role == "coder"][1:]
    assert later and all(len(str(r.messages)) < 200_000 for r in later)


def test_a_file_inside_a_submodule_is_refused_to_the_agent_and_the_submodule_is_left_alone(
        world: Callable[..., World]) -> None:
    script = [
        plan_entry(subtask("s1", "patch the vendored lib")),
        {"match": {"role": "coder", "last_role": "user"}, "tool_calls": [
            call("create_file", path="vendor/lib/patch.py", content="PATCHED = True\n")]},
        {"match": {"role": "coder", "last_message_contains": "is inside the submodule"}, "tool_calls": [
            call("create_file", path="lib_patch.py", content="PATCHED = True\n"),
            call("submit", summary="patched beside the submodule")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="ok")]},
    ]
    w = world(script)
    lib = make_repo(w.root / "lib", {"lib.py": "PATCHED = False\n"})
    git(w.repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    git(w.repo, "commit", "-q", "-m", "vendor lib")
    pinned = git(w.repo, "rev-parse", "main:vendor/lib")

    ran = w.shipyard("run", "patch the lib", "--repo", ".")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    job = w.only_job()
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED
    refused = [e.payload["output"] for e in w.director().events(job.id)
               if e.kind == "agent.tool_result" and not e.payload["ok"]]
    assert refused == ["vendor/lib/patch.py is inside the submodule vendor/lib: changes there are not part of this "
                       "repository's commits; change the files of this repository instead"], refused
    branch = f"shipyard/{job.id}"
    assert git(w.repo, "show", f"{branch}:lib_patch.py") == "PATCHED = True\n"
    assert git(w.repo, "diff", "--name-only", "main", branch) == "lib_patch.py\n"
    assert git(w.repo, "rev-parse", f"{branch}:vendor/lib") == pinned
    assert git(lib, "status", "--porcelain") == "" and not (lib / "patch.py").exists()
