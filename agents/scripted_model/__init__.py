"""A scripted, OpenAI-compatible model server for tests and demos: real HTTP, canned answers."""

from agents.scripted_model.script import (
    ChatRequest,
    Entry,
    Match,
    Script,
    ScriptError,
    TokenUsage,
    ToolCall,
)
from agents.scripted_model.server import (
    RecordedRequest,
    ScriptedModel,
    ScriptedModelServer,
    create_app,
    serve,
)

__all__ = [
    "ChatRequest",
    "Entry",
    "Match",
    "RecordedRequest",
    "Script",
    "ScriptError",
    "ScriptedModel",
    "ScriptedModelServer",
    "TokenUsage",
    "ToolCall",
    "create_app",
    "serve",
]
