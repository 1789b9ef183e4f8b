"""What configures the agents layer: which model serves each role, how a conversation is fitted into its
window, which MCP servers an agent gets. Plain pydantic models, kept apart from the code that uses them so
that reading the configuration (every command of the CLI does) never loads the model stack."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.pricing import Price

Role = Literal["planner", "coder", "test_fixer", "reviewer"]
ROLES: tuple[Role, ...] = get_args(Role)

OPENAI_BASE_URL = "https://api.openai.com/v1"

# The answer room when none is configured: a quarter of the window, at most this.
DEFAULT_ANSWER_ROOM = 4096


class ModelSpec(BaseModel):
    """Which model serves a role, and how to reach it. The API key itself is never stored."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description=f"None means OpenAI ({OPENAI_BASE_URL})")
    model: str
    api_key_env: str = Field("OPENAI_API_KEY", description="the NAME of the environment variable holding the key")
    temperature: float | None = None
    max_tokens: int | None = Field(None, gt=0)
    timeout: float = Field(120, gt=0, description="seconds per HTTP attempt")
    max_retries: int = Field(4, ge=0)
    stream: bool = False
    input_price: float | None = Field(None, ge=0, description="USD per million input tokens; overrides the table")
    output_price: float | None = Field(None, ge=0, description="USD per million output tokens; overrides the table")
    cached_input_price: float | None = Field(
        None, ge=0, description="USD per million input tokens read from the prompt cache; with input_price"
    )
    context_window: int | None = Field(
        None, gt=0, description="tokens the model takes in; None: asked from the server (agents.context_window)"
    )

    @field_validator("base_url")
    @classmethod
    def _a_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            raise ValueError(f"{url!r} is not an http:// or https:// URL; write e.g. http://localhost:11434/v1")
        return url

    @model_validator(mode="after")
    def _prices_together(self) -> ModelSpec:
        if (self.input_price is None) != (self.output_price is None):
            raise ValueError("give both input_price and output_price, or neither")
        if self.cached_input_price is not None and self.input_price is None:
            raise ValueError("cached_input_price needs input_price and output_price")
        return self

    @property
    def price_override(self) -> Price | None:
        if self.input_price is None or self.output_price is None:
            return None
        return Price(self.input_price, self.output_price, self.cached_input_price)


class ContextOptions(BaseModel):
    """How a conversation is fitted into a window; the window itself is the model's."""

    model_config = ConfigDict(extra="forbid")

    answer_room: int | None = Field(
        None,
        gt=0,
        description=f"tokens kept free for the answer; default: a quarter of the window, at most {DEFAULT_ANSWER_ROOM}",
    )
    keep_observations: int = Field(3, ge=0, description="latest tool results kept in full when old ones are elided")
    recent_share: float = Field(
        0.5, gt=0, lt=1, description="share of the budget a condensation keeps for the latest steps"
    )
    summary_share: float = Field(0.15, gt=0, lt=0.5, description="the longest summary, as a share of the budget")
    margin: float = Field(0.1, ge=0, lt=0.5, description="share of the window left free for the token count's error")


class McpServerSpec(BaseModel):
    """One MCP server: a stdio command run in the agent's sandbox, or a streamable-HTTP URL."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(None, description="the program of a stdio server, started inside the agent's sandbox")
    args: list[str] = Field(default_factory=list, description="its arguments")
    env: dict[str, str] = Field(
        default_factory=dict, description="added to its environment in the sandbox (no secrets: the sandbox sees them)"
    )
    url: str | None = Field(None, description="a streamable-HTTP server, reached from the host ([mcp] allow_http)")
    roles: list[Role] = Field(["coder", "test_fixer"], description="the roles whose agents get its tools")
    start_timeout: float = Field(30.0, gt=0, description="seconds to start and list its tools")
    call_timeout: float = Field(120.0, gt=0, description="seconds one tool call may take")

    @model_validator(mode="after")
    def _command_or_url(self) -> McpServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs either a command (stdio) or a url (streamable HTTP), not both")
        return self
