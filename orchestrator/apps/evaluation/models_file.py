"""`--models FILE`: the models an evaluation runs with, as a TOML file of [models.*] tables.

The tables are those of shipyard.toml, so a configuration can be copied between the two:

    [models.default]                      # every role without a table of its own
    base_url = "https://api.openai.com/v1"
    model = "gpt-4.1"
    api_key_env = "OPENAI_API_KEY"        # the NAME of the variable; keys never go in files

    [models.coder]
    model = "gpt-4.1-mini"
    input_price = 0.4                     # USD per million tokens, for models the price table lacks
    output_price = 1.6

    [[candidate_models]]                  # optional: the coders of --candidates N
    model = "qwen2.5-coder:32b"
    base_url = "http://localhost:11434/v1"

The file replaces the configured models entirely, so that a run's models are exactly what it names.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.specs import ModelSpec
from agents.validation import problems
from orchestrator.config.settings import ROLES


class ModelsFileError(ValueError):
    """A models file that cannot be used; the message names the file and the key."""


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelSpec] = Field(min_length=1)
    candidate_models: list[ModelSpec] = Field(default_factory=list)

    @field_validator("models")
    @classmethod
    def _known_roles(cls, models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        unknown = sorted(set(models) - {"default", *ROLES})
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}: use default, {', '.join(ROLES)}")
        if "default" not in models and not set(ROLES) <= set(models):
            raise ValueError(f"give [models.default] or a table for every role ({', '.join(ROLES)})")
        return models


def load_models_file(path: Path) -> ModelsFile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelsFileError(f"{path}: cannot read the models file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelsFileError(f"{path}: not valid TOML ({exc})") from None
    try:
        return ModelsFile.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        raise ModelsFileError(f"{path}: {found}") from None
