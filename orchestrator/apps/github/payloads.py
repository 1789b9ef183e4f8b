"""The webhook payloads the App acts on, validated at the door; GitHub sends many more fields than these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from agents.validation import problems


class User(BaseModel):
    login: str
    type: str = "User"  # "Bot" for Apps, ours included

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot"


class Repository(BaseModel):
    full_name: str
    name: str
    owner: User


class InstallationRef(BaseModel):
    id: int


class Label(BaseModel):
    name: str


class Issue(BaseModel):
    number: int
    title: str
    body: str | None = None
    user: User
    state: str = "open"
    # Present when the "issue" is a pull request: GitHub sends PR conversation comments as issue comments.
    pull_request: dict[str, Any] | None = None


class IssueComment(BaseModel):
    id: int
    body: str | None = None
    user: User


class ReviewComment(BaseModel):
    id: int
    body: str | None = None
    user: User
    path: str
    line: int | None = None
    diff_hunk: str = ""


class BranchRef(BaseModel):
    ref: str
    sha: str


class PullRequest(BaseModel):
    number: int
    title: str
    body: str | None = None
    state: str = "open"
    head: BranchRef
    base: BranchRef


class RepositoryEvent(BaseModel):
    """What every event about a repository says: which one, through which installation of the App, and who."""

    repository: Repository
    installation: InstallationRef
    sender: User


class RepositoryAction(RepositoryEvent):
    """An event about a repository that says what happened (opened, labeled, created, completed...)."""

    action: str


class IssuesEvent(RepositoryAction):
    issue: Issue
    label: Label | None = None


class IssueCommentEvent(RepositoryAction):
    issue: Issue
    comment: IssueComment


class ReviewCommentEvent(RepositoryAction):
    comment: ReviewComment
    pull_request: PullRequest


class Installation(BaseModel):
    id: int
    account: User


class InstallationEvent(BaseModel):
    action: str
    installation: Installation
    sender: User


class RepoRef(BaseModel):
    full_name: str


class WorkflowRun(BaseModel):
    id: int
    name: str | None = None
    head_branch: str | None = None  # None for a tag
    head_sha: str
    run_attempt: int = 1
    status: str | None = None
    conclusion: str | None = None
    head_repository: RepoRef | None = None


class WorkflowRunEvent(RepositoryAction):
    workflow_run: WorkflowRun


class App(BaseModel):
    slug: str | None = None
    name: str = ""


class CheckOutput(BaseModel):
    title: str | None = None
    summary: str | None = None
    text: str | None = None


class CheckSuiteRef(BaseModel):
    head_branch: str | None = None  # None when the branch is a fork's


class CheckRun(BaseModel):
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None = None
    output: CheckOutput = CheckOutput()
    app: App | None = None
    check_suite: CheckSuiteRef | None = None


class CheckRunEvent(RepositoryAction):
    check_run: CheckRun


class BranchName(BaseModel):
    name: str


class StatusEvent(RepositoryEvent):
    sha: str
    state: str  # pending, success, failure, error
    context: str
    description: str | None = None
    branches: list[BranchName] = []  # branches whose history holds the sha (ten at most)


WebhookEvent = (IssuesEvent | IssueCommentEvent | ReviewCommentEvent | InstallationEvent | WorkflowRunEvent
                | CheckRunEvent | StatusEvent)

MODELS: dict[str, type[BaseModel]] = {
    "issues": IssuesEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review_comment": ReviewCommentEvent,
    "installation": InstallationEvent,
    "workflow_run": WorkflowRunEvent,
    "check_run": CheckRunEvent,
    "status": StatusEvent,
}


class PayloadError(ValueError):
    """A delivery's body is not the event it says it is; the message is one line."""


def parse_event(name: str, payload: Any) -> WebhookEvent | None:
    """The validated event, or None for an event the App does not act on."""
    model = MODELS.get(name)
    if model is None:
        return None
    try:
        return model.model_validate(payload)  # type: ignore[return-value]
    except ValidationError as exc:
        found = problems(exc, "body")
        raise PayloadError(f"invalid {name} payload: {found}") from None
