"""One settings model for the whole tool.

Precedence, highest first:
  1. command-line flags (passed to ``load_settings`` as overrides)
  2. environment: ``GRADER_*`` (nested with ``__``, e.g. ``GRADER_JUDGE__MODEL``),
     plus the standard ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` for the judge
  3. a config file given with ``--config`` (TOML, YAML or JSON), else ``./grader.toml`` if present
  4. the defaults below
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from grader.errors import InputError, read_utf8
from grader.paths import default_rubrics_dir

JudgeBackend = Literal["none", "openai", "langchain", "auto"]
StructuredMode = Literal["auto", "json_schema", "json_object", "tools", "text"]


class JudgeSettings(BaseModel):
    backend: JudgeBackend = "auto"
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(default=None, description="Model name for the openai backend.")
    provider: str | None = Field(
        default=None, description="LangChain provider string for init_chat_model, e.g. 'anthropic:claude-x'."
    )
    prompt: str = Field(default="judge/v1", description="Prompt id under prompts/, e.g. judge/v1.")
    prompts_dir: Path | None = Field(default=None, description="Where prompts live; default: the shipped prompts/.")
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    concurrency: int = Field(default=4, ge=1)
    samples: int = Field(default=1, ge=1)
    logprobs: bool = False
    structured_mode: StructuredMode = "auto"
    cache: bool = True
    fallback: bool = Field(default=True, description="On judge failure, fall back to the offline score (flagged).")
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None

    @property
    def configured(self) -> bool:
        return bool(self.provider) or bool(self.base_url) or bool(self.api_key)


class EmbeddingSettings(BaseModel):
    model: str | None = Field(default=None, description="Path or name; default: the bundled all-MiniLM-L6-v2.")
    device: str = "cpu"
    batch_size: int = Field(default=64, ge=1)
    # Who runs the forward pass (grader/embedding/runtime.py): "auto" is the measured default (onnx);
    # "onnx"/"onnx-int8" run a plain BERT + mean-pooling model (the bundled one) on onnxruntime, converted
    # once into a cache folder; "torch" runs it on torch without sentence-transformers (identical
    # embeddings); "sentence-transformers" always loads it through SentenceTransformer.
    runtime: Literal["auto", "onnx", "onnx-int8", "torch", "sentence-transformers"] = "auto"


class CombineSettings(BaseModel):
    """How the final score mixes the embedding score and the judge score (when both exist)."""

    embedding_weight: float = Field(default=0.3, ge=0)
    judge_weight: float = Field(default=0.7, ge=0)


def _default_rubrics_dir() -> Path:
    local = Path("rubrics")
    return local if local.is_dir() else default_rubrics_dir()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADER_", env_nested_delimiter="__", extra="ignore")

    rubrics_dir: Path = Field(
        default_factory=_default_rubrics_dir, description="./rubrics if present, else the shipped rubrics/."
    )
    cache_dir: Path = Path(".grader-cache")
    calibration: Path | None = Field(default=None, description="Calibration file; default: the shipped one.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    combine: CombineSettings = Field(default_factory=CombineSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only init kwargs: load_settings merges file, env and flags itself, in the documented order.
        return (init_settings,)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a plain dict, with errors that name the file."""
    text = read_utf8(path, "config file")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise InputError("config must be .toml, .yaml/.yml or .json", file=path)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        line = getattr(e, "lineno", None)
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        raise InputError(f"cannot parse: {e}".splitlines()[0], file=path, line=line) from e
    if not isinstance(data, dict):
        raise InputError("top level must be a table/mapping", file=path)
    return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """The GRADER_* variables as a nested dict (pydantic-settings would do this, but we need the merge order)."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("GRADER_") or key == "GRADER_CONFIG":
            continue
        parts = key[len("GRADER_") :].lower().split("__")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    judge = out.setdefault("judge", {})
    if "OPENAI_API_KEY" in environ and "api_key" not in judge:
        judge["api_key"] = environ["OPENAI_API_KEY"]
    if "OPENAI_BASE_URL" in environ and "base_url" not in judge:
        judge["base_url"] = environ["OPENAI_BASE_URL"]
    if not judge:
        out.pop("judge")
    return out


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults < config file < environment < overrides (flags)."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    if config_file is None and env.get("GRADER_CONFIG"):
        config_file = Path(env["GRADER_CONFIG"])
    if config_file is None and Path("grader.toml").is_file():
        config_file = Path("grader.toml")
    if config_file is not None:
        file_data = read_config_file(config_file)
        # A config names its calibration relative to itself, so a tuned config and its calibration move together.
        cal = file_data.get("calibration")
        if isinstance(cal, str) and not Path(cal).is_absolute():
            file_data["calibration"] = str(config_file.parent / cal)
        data = _deep_merge(data, file_data)
    data = _deep_merge(data, _env_overrides(env))
    data = _deep_merge(data, _drop_none(overrides or {}))
    try:
        return Settings(**data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(err["msg"], file=config_file, field=field) from e


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            sub = _drop_none(v)
            if sub:
                out[k] = sub
        elif v is not None:
            out[k] = v
    return out
