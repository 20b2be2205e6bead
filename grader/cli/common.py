"""Flags shared by grade, batch, eval and tune, and the one place they become Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from grader.config import Settings, load_settings

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Config file (TOML/YAML/JSON), e.g. one written by `grader tune`.")
]
JudgeOpt = Annotated[
    str | None,
    typer.Option("--judge", help="none | openai | langchain | auto (judge if an endpoint is configured)."),
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Judge model name (openai backend).")]
ProviderOpt = Annotated[
    str | None, typer.Option("--provider", help="LangChain provider:model for --judge langchain, e.g. ollama:llama3.")
]
PromptOpt = Annotated[str | None, typer.Option("--prompt", help="Judge prompt id, e.g. judge/v1.")]
SamplesOpt = Annotated[int | None, typer.Option("--samples", min=1, help="Ask the judge N times; report mean and spread.")]
RubricsOpt = Annotated[Path | None, typer.Option("--rubrics", help="Rubric folder (default: rubrics/).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the judge cache.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def review_share_option(help: str) -> Any:
    """--review-share S (0..1): eval and tune say different things about it, so the help is the caller's."""
    return typer.Option("--review-share", min=0.0, max=1.0, help=help)


def build_settings(
    config: Path | None = None,
    judge: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    prompt: str | None = None,
    samples: int | None = None,
    rubrics: Path | None = None,
    no_cache: bool = False,
    **extra: Any,
) -> Settings:
    if judge is not None and judge not in ("none", "openai", "langchain", "auto"):
        raise typer.BadParameter(f"--judge must be none, openai, langchain or auto, not {judge!r}")
    overrides: dict[str, Any] = {
        "rubrics_dir": rubrics,
        "judge": {
            "backend": judge,
            "base_url": base_url,
            "model": model,
            "provider": provider,
            "prompt": prompt,
            "samples": samples,
            "cache": False if no_cache else None,
        },
    }
    overrides.update(extra)
    return load_settings(overrides=overrides, config_file=config)


def apply_pass_mark(settings: Settings, pass_mark: float | None, pass_margin: float | None) -> None:
    """--pass-mark / --pass-margin: grades this close to the mark are flagged for review."""
    if pass_mark is not None:
        settings.confidence.pass_mark = pass_mark
    if pass_margin is not None:
        settings.confidence.pass_margin = pass_margin
