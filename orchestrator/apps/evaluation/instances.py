"""SWE-bench instances as the official JSONL files have them, plus where to find the repo locally."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.validation import json_object, problems

# Instance ids name files and branches: `astropy__astropy-12907`, `django__django-11099`.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class InstanceError(ValueError):
    """An instances file that cannot be used; the message names the file and line."""


class Instance(BaseModel):
    """One task. Fields the official files carry and the harness does not need (version,
    created_at, hints_text, ...) are ignored, so a dataset file is read unchanged."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    instance_id: str
    repo: str = Field(description="owner/name on GitHub, e.g. astropy/astropy")
    base_commit: str
    problem_statement: str = Field(min_length=1, description="the task given to the agents")
    test_patch: str = Field(description="hidden tests, applied only after the job finished")
    FAIL_TO_PASS: list[str] = Field(min_length=1)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    patch: str | None = Field(None, description="the reference solution: never shown to agents; graded by --gold")
    repo_path: str | None = Field(None, description="a local clone; relative to the instances file")
    repo_url: str | None = Field(None, description="where to clone from instead of https://github.com/<repo>")
    image: str | None = Field(None, description="sandbox image for this instance (docker backend only)")
    # SWE-bench builds each instance's environment at this commit; here the image (or the
    # sandbox's own toolchain) is the environment, so it is read and not used.
    environment_setup_commit: str | None = None

    @field_validator("instance_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not _INSTANCE_ID.fullmatch(value):
            raise ValueError("use letters, digits, '.', '_' and '-' (it names files and branches)")
        return value

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_encoded(cls, value: Any) -> Any:
        # The official files hold these lists JSON-encoded, as strings.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("not a JSON-encoded list of test ids") from None
        return value

    @property
    def test_ids(self) -> list[str]:
        return [*self.FAIL_TO_PASS, *self.PASS_TO_PASS]


def load_instances(path: Path) -> list[Instance]:
    """Every instance of a JSONL file, in file order; InstanceError names the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"{path}: cannot read the instances file ({exc})") from None
    instances: list[Instance] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json_object(line)
        except ValueError as exc:
            raise InstanceError(f"{where}: {exc} (one instance per line, each a JSON object)") from None
        try:
            instance = Instance.model_validate(data)
        except ValidationError as exc:
            raise InstanceError(f"{where}: {_problems(exc)}") from None
        if instance.instance_id in seen:
            raise InstanceError(f"{where}: instance {instance.instance_id} already appears on line "
                                f"{seen[instance.instance_id]}")
        seen[instance.instance_id] = number
        instances.append(instance)
    if not instances:
        raise InstanceError(f"{path}: no instances in the file")
    return instances


def _problems(exc: ValidationError) -> str:
    return problems(exc, "instance")
