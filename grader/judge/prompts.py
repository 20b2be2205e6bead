"""Judge prompts as versioned data: load a YAML file from prompts/, hash it, render it.

A prompt's content hash is computed from what is sent to the model (its id, version and message
templates), not from the file's bytes, so reformatting comments does not change grades' provenance
but any wording change does.
"""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.errors import InputError
from grader.paths import prompts_dir as default_prompts_dir


class PromptMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class JudgePrompt(BaseModel):
    """One prompt file. `render(**values)` fills the templates exactly as LangChain's f-string templates would."""

    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    description: str = ""
    input_variables: list[str]
    messages: list[PromptMessage] = Field(min_length=1)
    source: str | None = Field(default=None, description="File the prompt was loaded from.")

    @model_validator(mode="after")
    def _variables_match(self) -> JudgePrompt:
        used = self.template_variables()
        declared = set(self.input_variables)
        if used != declared:
            missing = sorted(used - declared)
            unused = sorted(declared - used)
            raise ValueError(f"input_variables do not match the templates (undeclared {missing}, unused {unused})")
        return self

    def template_variables(self) -> set[str]:
        names: set[str] = set()
        for m in self.messages:
            for _, field, _, _ in string.Formatter().parse(m.content):
                if field is not None:
                    names.add(field)
        return names

    @property
    def content_hash(self) -> str:
        payload = json.dumps(
            {"id": self.id, "version": self.version, "messages": [m.model_dump() for m in self.messages]},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """What JudgeResult.prompt_version carries, e.g. 'judge/v1@1.0.0'."""
        return f"{self.id}@{self.version}"

    def render(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages as OpenAI-style dicts. Values are inserted verbatim (never re-parsed as templates)."""
        missing = set(self.input_variables) - set(values)
        if missing:
            raise KeyError(f"missing prompt values: {sorted(missing)}")
        return [{"role": m.role, "content": m.content.format(**values)} for m in self.messages]

    def to_langchain(self) -> Any:
        """The prompt as a LangChain ChatPromptTemplate (f-string templates, same variables)."""
        from langchain_core.prompts import ChatPromptTemplate

        role_map = {"system": "system", "user": "human", "assistant": "ai"}
        return ChatPromptTemplate.from_messages([(role_map[m.role], m.content) for m in self.messages])


def prompt_path(prompt_id: str, prompts_dir: Path | None = None) -> Path:
    """Where a prompt id lives: '<prompts_dir>/<id>.yaml'; a path to a .yaml file is taken as is."""
    as_path = Path(prompt_id)
    if as_path.suffix in (".yaml", ".yml") and as_path.is_file():
        return as_path
    base = prompts_dir if prompts_dir is not None else default_prompts_dir()
    return base / f"{prompt_id}.yaml"


def load_prompt(prompt_id: str, prompts_dir: Path | None = None) -> JudgePrompt:
    path = prompt_path(prompt_id, prompts_dir)
    if not path.is_file():
        raise InputError(f"no prompt {prompt_id!r} (looked for {path})", file=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"cannot parse prompt: {e}".splitlines()[0], file=path,
                         line=mark.line + 1 if mark else None) from e
    if not isinstance(data, dict):
        raise InputError("a prompt file must be a mapping", file=path)
    try:
        return JudgePrompt(**data, source=str(path))
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(err["msg"], file=path, field=field) from e
