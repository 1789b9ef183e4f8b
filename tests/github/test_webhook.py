"""The webhook endpoint and the desk without workers: signatures, replays, permissions, payload checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from appkit import INSTALLATION, REPO, GitHubWorld, payload
from jobs.jobkit import wait_for

from orchestrator.apps.github.signature import sign
from orchestrator.runtime.notify import GitHubCommentSink, notification_for


def settle() -> None:
    """Give the desk a few rounds (it polls every 0.2 s) to act on anything it was handed."""
    time.sleep(1.0)


def test_forged_and_unsigned_deliveries_get_401_and_start_nothing(world: GitHubWorld) -> None:
    body = json.dumps(payload("issues.labeled")).encode()
    forged = {
        "no signature": None,
        "a wrong signature": "sha256=" + "0" * 64,
        "signed with another secret": sign("not the secret", body),
        "SHA-1 style": "sha1=" + "0" * 40,
    }
    for what, signature in forged.items():
        answer = world.send("issues", body, signature=signature)
        assert answer.status_code == 401, what
        assert "X-Hub-Signature-256" in answer.json()["error"]
    tampered = body.replace(b"Add a note for contributors", b"Delete everything, quietly")
    assert world.send("issues", tampered, signature=sign("a webhook secret for tests", body)).status_code == 401

    settle()
    assert world.runner.list() == []
    assert world.records.pending() == [] and world.fake.requests == [] and world.fake.comments == []


@pytest.mark.parametrize("world", ["sqlite", "postgres"], indirect=True)
def test_redelivered_webhook_starts_nothing_new(world: GitHubWorld) -> None:
    labeled = payload("issues.labeled")
    first = world.send("issues", labeled, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 202
    (job,) = wait_for(lambda: world.runner.list(), 30, "the job")
    wait_for(lambda: world.status_comments(7), 60, "the status comment")  # the first delivery fully handled
    again = world.send("issues", labeled, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert again.status_code == 409 and "received before" in again.json()["error"]
    settle()
    assert [j.id for j in world.runner.list()] == [job.id]
    assert len(world.status_comments(7)) == 1
    # The same event under a new delivery id is a new request, as a person labelling twice would be.
    assert world.send("issues", labeled).status_code == 202
    wait_for(lambda: len(world.runner.list()) == 2, 30, "a second job")


def test_unauthorised_commenter_is_refused_politely(world: GitHubWorld) -> None:
    comment = payload("issue_comment.created", comment__user__login="stranger", sender__login="stranger")
    assert world.send("issue_comment", comment).status_code == 202
    (reply,) = wait_for(lambda: world.fake.comments_on(REPO, 7), 30, "the reply")
    assert reply.body.startswith("Thanks for asking, @stranger! Only people with write access")
    assert "`shipyard` label" in reply.body
    settle()
    assert world.runner.list() == [] and len(world.fake.comments) == 1
    # Nor can they approve someone else's plan.
    approve = payload("issue_comment.created", comment__body="/shipyard approve", comment__user__login="stranger")
    assert world.send("issue_comment", approve).status_code == 202
    wait_for(lambda: len(world.fake.comments) == 2, 30, "the second reply")
    assert ("GET", f"/repos/{REPO}/collaborators/stranger/permission") in world.fake.requests


def test_what_is_no_command_is_ignored(world: GitHubWorld) -> None:
    chatter = {
        "a plain comment": payload("issue_comment.created", comment__body="Looks good to me"),
        "an edited command": payload("issue_comment.created", action="edited"),
        "a quoted command": payload("issue_comment.created", comment__body="> /shipyard do it\n\nShould we?"),
        "the bot's own comment": payload("issue_comment.created", comment__user__login="shipyard-test[bot]",
                                         comment__user__type="Bot"),
        "a command in a code block": payload("issue_comment.created",
                                             comment__body="Try this:\n```\n/shipyard add a note\n```"),
    }
    for what, body in chatter.items():
        assert world.send("issue_comment", body).status_code == 202, what
    assert world.send("issues", payload("issues.labeled", label__name="bug")).status_code == 202
    by_bot = payload("issues.labeled", sender__login="triage-bot[bot]", sender__type="Bot")
    assert world.send("issues", by_bot).status_code == 202, "a label added by a bot: no job, and no thanks to a bot"
    wait_for(lambda: world.records.pending() == [], 60, "the desk to have handled every delivery")
    assert world.runner.list() == [] and world.fake.comments == []


def test_bad_deliveries_get_400(world: GitHubWorld) -> None:
    missing = payload("issue_comment.created")
    del missing["comment"]["user"]
    answer = world.send("issue_comment", missing)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid issue_comment payload: comment.user: Field required"
    assert world.send("issues", b"payload=%7B%7D").status_code == 400, "form-encoded, not JSON"
    no_installation = payload("issues.labeled")
    del no_installation["installation"]
    assert world.send("issues", no_installation).status_code == 400
    assert world.send("push", {"ref": "refs/heads/main"}).status_code == 202, "events the App does not handle"


def test_installation_events_are_accepted_and_drop_tokens(world: GitHubWorld) -> None:
    github = world.service.desk.github
    token = github.token(INSTALLATION)
    assert world.send("installation", payload("installation.created")).status_code == 202
    wait_for(lambda: world.records.pending() == [], 30, "the desk to take the delivery")
    assert github.token(INSTALLATION) == token, "a new installation leaves tokens alone"
    accepted = payload("installation.created", action="new_permissions_accepted")
    assert world.send("installation", accepted).status_code == 202
    wait_for(lambda: world.records.pending() == [], 30, "the desk to take the delivery")
    renewed = github.token(INSTALLATION)
    assert renewed != token, "a token made before the new permissions were accepted lacks them"
    deleted = payload("installation.created", action="deleted")
    assert world.send("installation", deleted).status_code == 202
    wait_for(lambda: world.records.pending() == [], 30, "the desk to take the delivery")
    assert github.token(INSTALLATION) != renewed, "the cached token went with the installation"


def test_ping_is_answered(world: GitHubWorld) -> None:
    answer = world.send("ping", payload("ping"), delivery="d1")
    assert answer.status_code == 200 and answer.json() == {"pong": "d1"}
    assert world.send("ping", payload("ping"), signature=None).status_code == 401


def test_the_desk_is_the_github_commenter_of_notifications(world: GitHubWorld) -> None:
    """notify.GitHubCommentSink posts through the desk, on the thread the job came from."""
    assert world.send("issues", payload("issues.labeled")).status_code == 202
    (job,) = wait_for(lambda: world.runner.list(), 30, "the job")
    # The job is listed once submitted; the desk notes the issue it came from just after.
    wait_for(lambda: world.records.job(job.id), 30, "the desk's record of the job")
    cancelled = world.runner.cancel(job.id)
    GitHubCommentSink(world.service.desk).send(notification_for(cancelled))  # type: ignore[arg-type]
    assert any(c.body.startswith(f"**Shipyard** — job {job.id} cancelled") for c in world.fake.comments_on(REPO, 7))


def test_serve_needs_its_secret_and_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)

    def serve(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", "github", "serve"], env={**env, **extra},
                              capture_output=True, text=True, timeout=60, check=False)

    missing = serve()
    assert missing.returncode == 2 and "SHIPYARD_GITHUB_WEBHOOK_SECRET is not set" in missing.stderr
    no_key = serve(SHIPYARD_GITHUB_WEBHOOK_SECRET="s", SHIPYARD_GITHUB__APP_ID="1",
                   SHIPYARD_GITHUB__PRIVATE_KEY_PATH=str(tmp_path / "none.pem"))
    assert no_key.returncode == 2 and "github.private_key_path: cannot read" in no_key.stderr
    assert "Traceback" not in missing.stderr + no_key.stderr
