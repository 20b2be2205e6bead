"""One settings model for the whole tool.

Precedence, highest first:
  1. command-line flags (passed to ``load_settings`` as overrides)
  2. environment: ``GRADER_*`` (nested with ``__``, e.g. ``GRADER_JUDGE__MODEL``),
     plus the standard ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` for the judge
  3. a config file given with ``--config`` (TOML, YAML or JSON), else ``./grader.toml`` if present
  4. the defaults below
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from grader import yamlsafe
from grader.errors import InputError, read_utf8
from grader.paths import default_rubrics_dir
from grader.redact import register_secret

# Every section refuses keys it does not know (a misspelt `fallbak = false` must not be ignored) and
# numbers that are not finite (TOML `inf`, JSON `Infinity`, YAML `.inf`).
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)

JudgeBackend = Literal["none", "openai", "langchain", "auto"]
StructuredMode = Literal["auto", "json_schema", "json_object", "tools", "text"]


class JudgeSettings(BaseModel):
    model_config = _STRICT

    backend: JudgeBackend = "auto"
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1")
    api_key: SecretStr | None = None
    model: str | None = Field(default=None, description="Model name for the openai backend.")
    provider: str | None = Field(
        default=None, description="LangChain provider string for init_chat_model, e.g. 'anthropic:claude-x'."
    )
    prompt: str = Field(default="judge/v1", description="Prompt id under prompts/, e.g. judge/v1.")
    prompts_dir: Path | None = Field(default=None, description="Where prompts live; default: the shipped prompts/.")
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds per request.")
    max_retries: int = Field(default=3, ge=0, le=20)
    concurrency: int = Field(default=4, ge=1, le=1024)
    samples: int = Field(default=1, ge=1, le=100)
    logprobs: bool = False
    structured_mode: StructuredMode = "auto"
    cache: bool = True
    fallback: bool = Field(default=True, description="On judge failure, fall back to the offline score (flagged).")
    price_per_1k_input: float | None = Field(default=None, ge=0)
    price_per_1k_output: float | None = Field(default=None, ge=0)

    @field_validator("api_key")
    @classmethod
    def _mask_everywhere(cls, v: SecretStr | None) -> SecretStr | None:
        # An endpoint may echo the key back in an error body: from now on every error text masks it.
        if v is not None:
            register_secret(v.get_secret_value())
        return v

    @property
    def configured(self) -> bool:
        return bool(self.provider) or bool(self.base_url) or bool(self.api_key)


class EmbeddingSettings(BaseModel):
    model_config = _STRICT

    model: str | None = Field(default=None, description="Path or name; default: the bundled all-MiniLM-L6-v2.")
    device: str = "cpu"
    batch_size: int = Field(default=64, ge=1, le=4096)
    # Who runs the forward pass (grader/embedding/runtime.py): "auto" is the measured default (onnx);
    # "onnx"/"onnx-int8" run a plain BERT + mean-pooling model (the bundled one) on onnxruntime, converted
    # once into a cache folder; "torch" runs it on torch without sentence-transformers (identical
    # embeddings); "sentence-transformers" always loads it through SentenceTransformer.
    runtime: Literal["auto", "onnx", "onnx-int8", "torch", "sentence-transformers"] = "auto"


class CombineSettings(BaseModel):
    """How the final score mixes the embedding score and the judge score (when both exist)."""

    model_config = _STRICT

    embedding_weight: float = Field(default=0.3, ge=0, le=1000)
    judge_weight: float = Field(default=0.7, ge=0, le=1000)

    band: float = Field(
        default=0.1, ge=0, le=1,
        description="The most the embedding may move a judged score, as a fraction of max_score, scaled by the "
        "weight of the points the judge left open (partial or unjudged); `grader tune` fits it.",
    )

    @model_validator(mode="after")
    def _some_weight(self) -> CombineSettings:
        if self.embedding_weight + self.judge_weight <= 0:
            raise ValueError("embedding_weight and judge_weight cannot both be 0")
        return self


class ConfidenceSettings(BaseModel):
    """How sure a grade is and when it goes to a person (see grader/pipeline/confidence.py)."""

    model_config = _STRICT

    model: Path | None = Field(default=None, description="Confidence model JSON; default: the shipped one.")
    pass_mark: float | None = Field(default=None, ge=0, description="Flag scores near this mark for review.")
    pass_margin: float = Field(default=0.5, ge=0, description="Within this many points of pass_mark: flagged.")
    spread_at: float = Field(
        default=0.1, ge=0, description="Judge samples whose standard deviation reaches this fraction of max_score."
    )
    near_limit: float = Field(default=0.9, gt=0, le=1, description="Answers this close to the length limit.")


def _default_rubrics_dir() -> Path:
    local = Path("rubrics")
    return local if local.is_dir() else default_rubrics_dir()


class Settings(BaseModel):
    # A plain model, not pydantic-settings: load_settings merges defaults < file < GRADER_* environment < flags
    # itself, in the documented order, so the settings library (and its ~90 ms import on every cold grade) is
    # not needed.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

    rubrics_dir: Path = Field(
        default_factory=_default_rubrics_dir, description="./rubrics if present, else the shipped rubrics/."
    )
    cache_dir: Path = Path(".grader-cache")
    calibration: Path | None = Field(default=None, description="Calibration file; default: the shipped one.")
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    combine: CombineSettings = Field(default_factory=CombineSettings)
    tuned: dict[str, Any] | None = Field(default=None, description="Provenance written by `grader tune`.")
    confidence: ConfidenceSettings = Field(default_factory=ConfidenceSettings)


def _parse_config_text(path: Path, text: str) -> Any:
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yamlsafe.safe_load(text) or {}
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        line = getattr(e, "lineno", None)
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            line = mark.line + 1
        problem = getattr(e, "problem", None)
        text = f"cannot parse: {problem}" if problem else f"cannot parse: {e}"
        raise InputError(text.splitlines()[0], file=path, line=line) from e
    raise InputError("config must be .toml, .yaml/.yml or .json", file=path)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML, YAML or JSON config file into a plain dict, with errors that name the file."""
    data = _parse_config_text(path, read_utf8(path, "config file", limit=MAX_CONFIG_BYTES))
    if not isinstance(data, dict):
        raise InputError("top level must be a table/mapping", file=path)
    return data


# A config file is a few dozen lines; a cap keeps `--config /dev/zero` from reading forever.
MAX_CONFIG_BYTES = 1024 * 1024


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section at `loc` (() is the top level)."""
    cls: Any = Settings
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        cls = ann
    return list(cls.model_fields)


def _line_in(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the key at `loc` in a TOML/YAML/JSON text, found section by section (None if not found)."""
    lines = text.splitlines()
    start, found = 0, None
    for part in loc:
        key = re.escape(str(part))
        pattern = re.compile(rf"""^\s*(\[\s*)?["']?{key}["']?\s*(\]|[:=])""")
        hit = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), None)
        if hit is None:
            break
        found, start = hit + 1, hit + 1
    return found


def _problem(err: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    """(location, message) of one validation error; unknown keys get the closest valid key."""
    loc = tuple(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        section, key = loc[:-1], str(loc[-1])
        valid = _keys_at(section)
        where = f" in [{'.'.join(map(str, section))}]" if section else ""
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(valid)})"
        kind = "section" if isinstance(err.get("input"), dict) else "key"
        msg = f"unknown {kind} {key!r}{where}{hint}"
    elif err["type"] == "finite_number":
        msg = "must be a finite number (not inf or nan)"
    return loc, msg


def _validate_file(data: dict[str, Any], path: Path, text: str) -> None:
    try:
        Settings(**data)
    except ValidationError as e:
        loc, msg = _problem(e.errors()[0])
        raise InputError(msg, file=path, line=_line_in(text, loc), field=".".join(map(str, loc))) from e


def _validate_env(data: dict[str, Any]) -> None:
    try:
        Settings(**data)
    except ValidationError as e:
        loc, msg = _problem(e.errors()[0])
        var = "GRADER_" + "__".join(str(p).upper() for p in loc)
        if msg.startswith("unknown"):
            msg = re.sub(r"did you mean '([a-z_]+)'\?",
                         lambda m: "did you mean " + "GRADER_" + "__".join(
                             [*(str(p).upper() for p in loc[:-1]), m.group(1).upper()]) + "?", msg)
        raise InputError(f"environment variable {var}: {msg}") from e


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
    sections = {k for k, f in Settings.model_fields.items() if isinstance(f.annotation, type)
                and issubclass(f.annotation, BaseModel)}
    for key, value in environ.items():
        if not key.startswith("GRADER_") or key == "GRADER_CONFIG":
            continue
        parts = key[len("GRADER_") :].lower().split("__")
        if len(parts) == 1 and parts[0] not in Settings.model_fields:
            continue  # GRADER_SHARED_DIR, GRADER_PROMPTS_DIR ...: read elsewhere, not settings
        if len(parts) > 1 and parts[0] not in sections:
            continue
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
        text = read_utf8(config_file, "config file", limit=MAX_CONFIG_BYTES)
        file_data = _parse_config_text(config_file, text)
        if not isinstance(file_data, dict):
            raise InputError("top level must be a table/mapping", file=config_file)
        # A config names its calibration relative to itself, so a tuned config and its calibration move together.
        cal = file_data.get("calibration")
        if isinstance(cal, str) and not Path(cal).is_absolute():
            file_data["calibration"] = str(config_file.parent / cal)
        # Each source is checked on its own first, so an error names the file and line (or the variable).
        _validate_file(file_data, config_file, text)
        conf = file_data.get("confidence")
        if isinstance(conf, dict) and isinstance(conf.get("model"), str) and not Path(conf["model"]).is_absolute():
            conf["model"] = str(config_file.parent / conf["model"])
        data = _deep_merge(data, file_data)
    env_data = _env_overrides(env)
    _validate_env(env_data)
    data = _deep_merge(data, env_data)
    data = _deep_merge(data, _drop_none(overrides or {}))
    try:
        return Settings(**data)
    except ValidationError as e:
        loc, msg = _problem(e.errors()[0])
        raise InputError(msg, field=".".join(map(str, loc))) from e


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
