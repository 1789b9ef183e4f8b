"""Stored payloads with GitHub's shapes, validated and read as triggers."""

from __future__ import annotations

import pytest
from appkit import PAYLOADS, payload

from orchestrator.apps.github.payloads import (
    CheckRunEvent,
    InstallationEvent,
    IssueCommentEvent,
    IssuesEvent,
    PayloadError,
    ReviewCommentEvent,
    StatusEvent,
    WorkflowRunEvent,
    parse_event,
)
from orchestrator.apps.github.triggers import (
    Approve,
    CheckResult,
    Ignore,
    InstallationChanged,
    Reject,
    Replan,
    Run,
    TopUp,
    command_text,
    interpret,
)
from orchestrator.config.settings import GitHubSettings

SETTINGS = GitHubSettings()


def event_name(fixture: str) -> str:
    return fixture.split(".")[0]


@pytest.mark.parametrize("fixture", sorted(p.stem for p in PAYLOADS.glob("*.json") if p.stem != "ping"))
def test_every_stored_payload_validates(fixture: str) -> None:
    event = parse_event(event_name(fixture), payload(fixture))
    expected = {"issues": IssuesEvent, "issue_comment": IssueCommentEvent,
                "pull_request_review_comment": ReviewCommentEvent, "installation": InstallationEvent,
                "workflow_run": WorkflowRunEvent, "check_run": CheckRunEvent, "status": StatusEvent}
    assert isinstance(event, expected[event_name(fixture)])


def test_a_labelled_issue_is_a_run_on_the_issue() -> None:
    intent = interpret(parse_event("issues", payload("issues.labeled")), SETTINGS)  # type: ignore[arg-type]
    assert isinstance(intent, Run)
    assert (intent.thread.repo, intent.thread.number, intent.thread.is_pull) == ("octo-org/widgets", 7, False)
    assert intent.thread.installation == 4242 and intent.user == "mona" and intent.request == ""
    assert intent.title == "Add a note for contributors" and "NOTE.md" in intent.body


def test_the_label_is_configurable_and_case_blind() -> None:
    event = parse_event("issues", payload("issues.labeled", label__name="Agent"))
    assert isinstance(interpret(event, SETTINGS), Ignore)  # type: ignore[arg-type]
    assert isinstance(interpret(event, GitHubSettings(trigger_label="agent")), Run)  # type: ignore[arg-type]


def test_a_label_added_by_a_bot_starts_nothing() -> None:
    event = parse_event("issues", payload("issues.labeled", sender__login="triage-bot[bot]", sender__type="Bot"))
    assert interpret(event, SETTINGS) == Ignore(reason="label added by the bot triage-bot[bot]")  # type: ignore[arg-type]


def test_comments_on_issues_and_pull_requests() -> None:
    on_issue = interpret(parse_event("issue_comment", payload("issue_comment.created")), SETTINGS)  # type: ignore[arg-type]
    assert isinstance(on_issue, Run) and not on_issue.thread.is_pull
    assert on_issue.request == "add NOTE.md as the issue says"
    on_pull = interpret(parse_event("issue_comment", payload("issue_comment.created.pull_request")),  # type: ignore[arg-type]
                        SETTINGS)
    assert isinstance(on_pull, Run) and on_pull.thread.is_pull and on_pull.thread.number == 12
    review = interpret(parse_event("pull_request_review_comment",  # type: ignore[arg-type]
                                   payload("pull_request_review_comment.created")), SETTINGS)
    assert isinstance(review, Run) and review.thread.is_pull and review.thread.number == 12
    assert review.review is not None and review.review.path == "README.md" and review.review.line == 1
    assert review.request == "add a NOTE.md that says where to start"


def test_approve_and_reject() -> None:
    def intent(body: str, prefix: str = "/shipyard"):  # type: ignore[no-untyped-def]
        event = parse_event("issue_comment", payload("issue_comment.created", comment__body=body))
        return interpret(event, GitHubSettings(command_prefix=prefix))  # type: ignore[arg-type]

    assert isinstance(intent("/shipyard approve"), Approve)
    assert isinstance(intent("Thanks!\n/Shipyard Approve\n"), Approve)
    rejected = intent("/shipyard reject too broad, split it")
    assert isinstance(rejected, Reject) and rejected.reason == "too broad, split it"
    replan = intent("/shipyard replan one subtask is enough")
    assert isinstance(replan, Replan) and replan.note == "one subtask is enough"
    assert isinstance(intent("@bot approve", prefix="@bot"), Approve)
    assert isinstance(intent("/shipyardish approve"), Ignore)


def test_command_text() -> None:
    assert command_text("/shipyard rename foo\nand update the docs", "/shipyard") == "rename foo\nand update the docs"
    assert command_text("Some context.\n  /shipyard fix it", "/shipyard") == "fix it"
    assert command_text("/shipyard", "/shipyard") == ""
    assert command_text("> /shipyard fix it", "/shipyard") is None
    assert command_text("see `/shipyard fix`", "/shipyard") is None
    assert command_text(None, "/shipyard") is None


def test_a_command_in_a_code_block_is_an_example() -> None:
    example = "To start it, write\n```\n/shipyard add a note\n```\nin a comment."
    assert command_text(example, "/shipyard") is None
    assert command_text("~~~~\n/shipyard no\n~~~\n/shipyard still in the block\n~~~~", "/shipyard") is None
    assert command_text("```text\n/shipyard no\n```\n/shipyard yes", "/shipyard") == "yes"
    pasted = "/shipyard fix this crash:\n```\nTraceback (most recent call last):\n```"
    assert command_text(pasted, "/shipyard") == "fix this crash:\n```\nTraceback (most recent call last):\n```", (
        "a block after the command is part of the request")


def check(name: str, **changes: object) -> CheckResult | Ignore:
    intent = interpret(parse_event(name.split(".")[0], payload(name, **changes)), SETTINGS)  # type: ignore[arg-type]
    assert isinstance(intent, CheckResult | Ignore)
    return intent


def test_check_results() -> None:
    failed = check("workflow_run.completed")
    assert isinstance(failed, CheckResult) and not failed.passed and failed.name == "CI"
    assert failed.run_id == 13400118001 and failed.attempt == 1
    assert failed.branches == ["shipyard/20250303-091500-ab12"] and failed.repo == "octo-org/widgets"
    rerun = check("workflow_run.completed", workflow_run__conclusion="success", workflow_run__run_attempt=2)
    assert isinstance(rerun, CheckResult) and rerun.passed and rerun.attempt == 2
    assert isinstance(check("workflow_run.completed", action="requested"), Ignore)
    assert isinstance(check("workflow_run.completed", workflow_run__conclusion="cancelled"), Ignore)
    assert isinstance(check("workflow_run.completed", workflow_run__head_repository__full_name="fork/widgets"), Ignore)

    lint = check("check_run.completed")
    assert isinstance(lint, CheckResult) and lint.name == "lint" and lint.run_id is None
    assert "line 1 is too short" in lint.details
    actions_job = check("check_run.completed", check_run__app__slug="github-actions")
    assert actions_job == Ignore(reason="an Actions job: its workflow run is looked at")

    status = check("status")
    assert isinstance(status, CheckResult) and status.name == "ci/example" and not status.passed
    assert status.details == "Build failed: 1 test of 40 failed"
    assert isinstance(check("status", state="pending"), Ignore)
    assert isinstance(check("status", state="error"), CheckResult)


def test_installation_events() -> None:
    intent = interpret(parse_event("installation", payload("installation.created")), SETTINGS)  # type: ignore[arg-type]
    assert intent == InstallationChanged(installation=4242, action="created", account="octo-org")


def test_other_events_are_not_parsed_and_bad_ones_say_why() -> None:
    assert parse_event("push", {"ref": "refs/heads/main"}) is None
    with pytest.raises(PayloadError, match=r"^invalid issues payload: issue.number: Field required$"):
        broken = payload("issues.labeled")
        del broken["issue"]["number"]
        parse_event("issues", broken)


def _comment(body: str):  # noqa: ANN202
    event = parse_event("issue_comment", payload("issue_comment.created", comment__body=body))
    return interpret(event, SETTINGS)  # type: ignore[arg-type]


def test_campaign_and_topup_commands() -> None:
    run = _comment("/shipyard campaign raise coverage of src/ to 90% --until `coverage report --fail-under=90`")
    assert isinstance(run, Run) and run.campaign is not None
    assert run.campaign.goal == "raise coverage of src/ to 90%" == run.request
    assert run.campaign.verifier == "coverage report --fail-under=90"
    plain = _comment("/shipyard campaign with no verifier")
    assert isinstance(plain, Run) and plain.campaign is None  # an ordinary request, as written
    topup = _comment("/shipyard topup $2.50")
    assert isinstance(topup, TopUp) and topup.amount == 2.5
    assert isinstance(_comment("/shipyard topup lots"), Ignore)
