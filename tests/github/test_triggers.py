"""Stored payloads with GitHub's shapes, validated and read as triggers."""

from __future__ import annotations

import pytest
from appkit import PAYLOADS, payload

from orchestrator.apps.github.payloads import (
    InstallationEvent,
    IssueCommentEvent,
    IssuesEvent,
    PayloadError,
    ReviewCommentEvent,
    parse_event,
)
from orchestrator.apps.github.triggers import Approve, Ignore, InstallationChanged, Reject, Run, command_text, interpret
from orchestrator.config.settings import GitHubSettings

SETTINGS = GitHubSettings()


def event_name(fixture: str) -> str:
    return fixture.split(".")[0]


@pytest.mark.parametrize("fixture", sorted(p.stem for p in PAYLOADS.glob("*.json") if p.stem != "ping"))
def test_every_stored_payload_validates(fixture: str) -> None:
    event = parse_event(event_name(fixture), payload(fixture))
    expected = {"issues": IssuesEvent, "issue_comment": IssueCommentEvent,
                "pull_request_review_comment": ReviewCommentEvent, "installation": InstallationEvent}
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
    assert isinstance(intent("@bot approve", prefix="@bot"), Approve)
    assert isinstance(intent("/shipyardish approve"), Ignore)


def test_command_text() -> None:
    assert command_text("/shipyard rename foo\nand update the docs", "/shipyard") == "rename foo\nand update the docs"
    assert command_text("Some context.\n  /shipyard fix it", "/shipyard") == "fix it"
    assert command_text("/shipyard", "/shipyard") == ""
    assert command_text("> /shipyard fix it", "/shipyard") is None
    assert command_text("see `/shipyard fix`", "/shipyard") is None
    assert command_text(None, "/shipyard") is None


def test_installation_events() -> None:
    intent = interpret(parse_event("installation", payload("installation.created")), SETTINGS)  # type: ignore[arg-type]
    assert intent == InstallationChanged(installation=4242, action="created", account="octo-org")


def test_other_events_are_not_parsed_and_bad_ones_say_why() -> None:
    assert parse_event("push", {"ref": "refs/heads/main"}) is None
    with pytest.raises(PayloadError, match=r"^invalid issues payload: issue.number: Field required$"):
        broken = payload("issues.labeled")
        del broken["issue"]["number"]
        parse_event("issues", broken)
