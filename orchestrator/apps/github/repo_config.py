"""A repository's own say over the jobs it gets: `.shipyard.toml` at the root of its default branch."""

from __future__ import annotations

import tomllib

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.validation import problems
from orchestrator.config.settings import ROLES, Settings

FILE_NAME = ".shipyard.toml"


class RepoConfigError(ValueError):
    """The repository's .shipyard.toml cannot be used; the message is one line, fit for a comment."""


class RepoBudgets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_cost_per_job: float | None = Field(None, ge=0, description="USD; lowers the App's own cap, never raises it")


class RepoCI(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fix_failures: bool = Field(False, description="fix the failing checks of the pull requests Shipyard opens")
    max_rounds: int = Field(2, ge=1, le=10, description="follow-up jobs per pull request before it is left to you")


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_command: str | None = Field(None, description="how the repository's tests run")
    image: str | None = Field(None, description="the sandbox image its jobs run in")
    models: list[str] | None = Field(None, description="the only models allowed to see the code")
    approve_plan: bool = Field(False, description="jobs wait for `/shipyard approve` of their plan")
    budgets: RepoBudgets = Field(default_factory=RepoBudgets)
    ci: RepoCI = Field(default_factory=RepoCI)

    def refused_models(self, settings: Settings) -> list[str]:
        """The models Shipyard would use here that the repository does not allow."""
        if self.models is None:
            return []
        used = {settings.model_for(role).model for role in ROLES} | {m.model for m in settings.candidate_models}
        return sorted(used - set(self.models))

    def max_cost(self, settings: Settings) -> float | None:
        caps = [c for c in (self.budgets.max_cost_per_job, settings.budgets.max_cost_per_job) if c is not None]
        return min(caps) if caps else None


def parse_repo_config(text: str | None) -> RepoConfig:
    if text is None:
        return RepoConfig()
    try:
        return RepoConfig.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise RepoConfigError(f"{FILE_NAME} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        found = problems(exc)
        raise RepoConfigError(f"{FILE_NAME}: {found}") from None
