"""The one configuration model: defaults < user config < repo `shipyard.toml` < SHIPYARD_* env vars.

Nested keys in env vars use a double underscore, e.g. SHIPYARD_SANDBOX__BACKEND=docker or
SHIPYARD_MODELS__CODER__MODEL=qwen2.5-coder:32b.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from agents.specs import ROLES, ContextOptions, McpServerSpec, ModelSpec, Role
from agents.validation import problems
from sandboxes.base import SandboxLimits

CONFIG_FILE_NAME = "shipyard.toml"
# Diverse enough that candidate coders do not all write the same patch.
CANDIDATE_TEMPERATURES = (0.0, 0.5, 0.9, 0.3, 0.7)
# Tokens of context assumed for a model that neither the configuration nor its server gives a window:
# small enough for most open models served locally, and a larger one only condenses sooner than needed.
DEFAULT_CONTEXT_WINDOW = 32_768
SERVER_NAME = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file or key to fix."""


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def user_config_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "shipyard" / CONFIG_FILE_NAME


def default_state_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "shipyard"


class _Table(BaseModel):
    """A table of shipyard.toml: a misspelled key is an error, not a setting silently left at its default."""

    model_config = ConfigDict(extra="forbid")


class SandboxSettings(_Table):
    backend: Literal["auto", "docker", "bubblewrap", "local"] = "auto"
    image: str = "shipyard-sandbox:latest"
    dockerfile: Path | None = Field(None, description="a directory with a Dockerfile (relative: in the repo) to build "
                                    "the project environment's image from")
    network: bool = Field(False, description="let agents and test runs reach the network (the environment's "
                          "setup has its own: environment.network)")
    env: dict[str, str] = Field(default_factory=dict, description="added to the environment of every agent command "
                                "and test run, e.g. CI=1 (agents read it: never put secrets here)")
    limits: SandboxLimits = Field(default_factory=SandboxLimits)


class EnvironmentSettings(_Table):
    """How a repository's project environment is set up: once, then frozen and cached (orchestrator.environments)."""

    network: bool = Field(True, description="let the setup commands reach the network (agents never do, unless "
                          "sandbox.network); off works for images that hold everything already")
    env: dict[str, str] = Field(default_factory=dict, description="added to the setup commands' environment, e.g. "
                                "PIP_INDEX_URL for a private index (not to the agents'; never put secrets here)")
    timeout: float = Field(1800.0, gt=0, description="seconds each setup command may run")


class BudgetSettings(_Table):
    max_cost_per_job: float | None = Field(None, ge=0, description="USD; the job stops cleanly when spent")
    max_cost_per_agent: float | None = Field(None, ge=0)
    max_tokens_per_agent: int = Field(2_000_000, ge=1_000)
    max_steps_per_agent: int = Field(60, ge=1)
    max_seconds_per_agent: float = Field(1800, gt=0)


class WorkerSettings(_Table):
    concurrency: int = Field(2, ge=1, le=64, description="jobs a worker runs at once (one value for all workers "
                             "of a database: it is stored with the queue)")
    heartbeat: float = Field(5.0, gt=0, description="seconds between a worker's heartbeats")
    lease: float = Field(30.0, gt=0, description="seconds without a heartbeat after which a worker counts as dead "
                         "and its jobs are taken over")
    poll: float = Field(1.0, gt=0, description="seconds between looks at the queue")

    @model_validator(mode="after")
    def _lease_outlasts_heartbeats(self) -> WorkerSettings:
        if self.lease < 2 * self.heartbeat:
            raise ValueError("lease must be at least two heartbeats, or a live worker may look dead")
        return self


class NotificationSettings(_Table):
    webhook_url: str | None = Field(None, description="receives a JSON POST when a job finishes, fails or waits")
    webhook_attempts: int = Field(5, ge=1, description="tries per notification, with doubling pauses between")
    webhook_timeout: float = Field(10.0, gt=0, description="seconds per try")
    command: str | None = Field(None, description="a shell command run with the notification JSON on stdin")


class GitHubSettings(_Table):
    app_id: int | None = Field(None, description="the GitHub App's id, from its settings page")
    private_key_path: Path | None = Field(None, description="the App's private key (.pem), for its JWTs")
    webhook_secret_env: str = Field("SHIPYARD_GITHUB_WEBHOOK_SECRET",
                                    description="the environment variable that holds the webhook secret")
    api_url: str = Field("https://api.github.com", description="GitHub Enterprise Server: https://HOST/api/v3")
    trigger_label: str = Field("shipyard", min_length=1, description="labelling an issue with it starts a job")
    command_prefix: str = Field("/shipyard", pattern=r"^\S+$", description="comments starting with it are commands")
    approve_plan: bool = Field(False, description="every job waits for `/shipyard approve` of its plan")


class ContextSettings(ContextOptions):
    """How each agent's conversation is kept inside its model's context window."""

    default_window: int = Field(
        DEFAULT_CONTEXT_WINDOW, ge=1024, description="tokens, for a model whose window is neither configured "
        "(context_window of its [models] table) nor reported by its server"
    )
    summarizer: ModelSpec | None = Field(
        None, description="a (cheaper) model that writes the summaries of condensed history; default: the agent's own"
    )


class McpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_http: bool = Field(False, description="allow streamable-HTTP servers: the host, not a sandbox, reaches them")
    servers: dict[str, McpServerSpec] = Field(
        default_factory=dict, description="by name; each tool is offered as <name>__<tool> to the server's roles"
    )

    @model_validator(mode="after")
    def _names_and_http(self) -> McpSettings:
        for name in self.servers:
            if not SERVER_NAME.fullmatch(name):
                raise ValueError(f"MCP server name {name!r}: use letters, digits, - and _ only")
        remote = [name for name, server in self.servers.items() if server.url is not None]
        if remote and not self.allow_http:
            raise ValueError(
                f"MCP server(s) {', '.join(remote)} would be reached over HTTP from the host: set allow_http = true "
                "in [mcp] to allow it, or give a command to run the server in the sandbox"
            )
        return self

    def for_role(self, role: Role) -> dict[str, McpServerSpec]:
        """The servers whose tools agents of `role` get."""
        return {name: server for name, server in self.servers.items() if role in server.roles}


def _default_models() -> dict[str, ModelSpec]:
    return {"default": ModelSpec(model="gpt-4.1-mini")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", env_nested_delimiter="__", extra="forbid")

    # Set by load_settings before construction: which TOML files feed this instance.
    toml_files: ClassVar[list[Path]] = []

    state_dir: Path = Field(default_factory=default_state_dir)
    database_url: str | None = Field(
        None, description="postgresql://... for jobs, events, checkpoints and the queue; default SQLite in state_dir"
    )
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    environment: EnvironmentSettings = Field(default_factory=EnvironmentSettings)
    models: dict[str, ModelSpec] = Field(
        default_factory=_default_models,
        description="per role (planner, coder, test_fixer, reviewer), falling back to 'default'",
    )
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    candidate_models: list[ModelSpec] = Field(
        default_factory=list,
        description="models for --candidates N, used in turn; without them the coder's model at rising temperatures",
    )
    test_command: str | None = Field(None, description="else detected from the repo")
    max_replans: int = Field(3, ge=0, description="times the director may send a job's plan back to the planner "
                             "(`shipyard replan`); past it, the plan can only be approved, edited or rejected")
    setup_command: str | None = Field(None, description="sets the project environment up (once, then cached), "
                                      "unless the repo has a dev container or sandbox.dockerfile")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_files, deep_merge=True)
        return init_settings, env_settings, toml

    @field_validator("state_dir")
    @classmethod
    def _expand_home(cls, path: Path) -> Path:
        try:
            return path.expanduser()
        except RuntimeError as exc:  # "~someone" who is not a user here
            raise ValueError(f"{path}: {exc}") from None

    def candidate_model(self, coder: ModelSpec, index: int) -> ModelSpec:
        if self.candidate_models:
            return self.candidate_models[index % len(self.candidate_models)]
        return coder.model_copy(update={"temperature": CANDIDATE_TEMPERATURES[index % len(CANDIDATE_TEMPERATURES)]})

    def model_for(self, role: Role) -> ModelSpec:
        spec = self.models.get(role) or self.models.get("default")
        if spec is None:
            raise ConfigError(f"no model configured for role '{role}': add [models.{role}] or [models.default]")
        return spec


# Where a process keeps its records, not how a job works: those of the process at hand always count.
PROCESS_KEYS = frozenset({"state_dir", "database_url"})


def job_snapshot(settings: Settings) -> dict[str, Any]:
    """The settings a job is submitted with, as stored with it (no secrets: keys are named, never held)."""
    return settings.model_dump(mode="json", exclude=set(PROCESS_KEYS))


def for_job(current: Settings, snapshot: dict[str, Any] | None) -> Settings:
    """The settings to run a job with: the ones it was submitted with (its repo's shipyard.toml, the
    environment of `shipyard run`/`submit`), wherever and by whom it is resumed, approved or retried."""
    if snapshot is None:  # submitted before jobs kept their settings
        return current
    try:
        # Validated as data: no file or environment variable of this process is read again.
        return Settings.model_validate({**snapshot, **{key: getattr(current, key) for key in PROCESS_KEYS}})
    except ValidationError as exc:
        raise ConfigError(f"the settings job was submitted with no longer load ({problems(exc)}); "
                          "retry it as a new job") from None


def config_files(repo: Path | None = None) -> list[Path]:
    """The TOML files that exist, lowest precedence first."""
    candidates = [user_config_path(), (repo or Path.cwd()) / CONFIG_FILE_NAME]
    return [p for p in candidates if p.is_file()]


def load_settings(repo: Path | None = None, **overrides: Any) -> Settings:
    """Settings for work on `repo` (its shipyard.toml counts); ConfigError on bad input."""
    files = config_files(repo)
    for path in files:
        try:
            tomllib.loads(path.read_bytes().decode("utf-8"))  # as the TOML source reads it: no newline translation
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    Settings.toml_files = files
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, files)) from None
    except SettingsError as exc:  # e.g. SHIPYARD_MODELS set to something that is not JSON
        raise ConfigError(f"invalid configuration: {exc}; complex values in SHIPYARD_* variables are JSON") from None
    unknown = set(settings.models) - {"default", *ROLES}
    if unknown:
        raise ConfigError(f"unknown model role(s) {sorted(unknown)}: use default, {', '.join(ROLES)}")
    return settings


def _one_line(exc: ValidationError, files: list[Path]) -> str:
    where = ", ".join(str(f) for f in files) or "SHIPYARD_* environment variables"
    found = problems(exc)
    return f"invalid configuration in {where}: {found}"


_URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@\s]+@")
_SECRET_WORDS = ("key", "token", "secret", "password")


def masked(data: Any) -> Any:
    """The settings as plain data with secret values hidden; `*_env` names of variables stay visible."""
    if isinstance(data, dict):
        return {
            # Only text can be a secret: max_tokens_per_agent is a number, not a token.
            k: "****" if _is_secret(k) and isinstance(v, str) and v else masked(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [masked(v) for v in data]
    if isinstance(data, str):
        return _URL_PASSWORD.sub(r"\1****@", data)
    return data


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(w in lowered for w in _SECRET_WORDS) and not lowered.endswith("_env")
