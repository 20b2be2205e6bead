"""The LLM judge: versioned prompts, OpenAI-compatible or LangChain transports, structured verdicts.

Public entry points:
  make_judge(settings) -> Judge | None           (None when the backend resolves to "none")
  Judge.judge(rubric, answer) / await Judge.ajudge(rubric, answer) -> JudgeResult
  structured.request_structured(judge_settings, messages, schema, name) -> StructuredReply
  prompts.load_prompt(prompt_id) -> JudgePrompt;  injection.suspicious(answer) -> list[str]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.config import Settings
    from grader.judge.judge import Judge

__all__ = ["make_judge", "resolve_backend"]


def make_judge(settings: Settings) -> Judge | None:
    """A Judge for the configured backend, or None when it resolves to "none".

    Raises InputError for a configuration that cannot work (langchain without a provider);
    endpoint trouble never raises here or later: it shows up as unscored JudgeResults.
    """
    from grader.errors import InputError
    from grader.judge.structured import resolve_backend

    backend = resolve_backend(settings.judge)
    if backend == "none":
        return None
    from grader.judge.judge import Judge

    if backend == "langchain" and not settings.judge.provider:
        raise InputError("--judge langchain needs --provider, e.g. ollama:llama3", field="judge.provider")
    if backend == "openai" and not (settings.judge.base_url or settings.judge.api_key):
        raise InputError("--judge openai needs --base-url or OPENAI_API_KEY", field="judge.base_url")
    return Judge(settings)


def __getattr__(name: str) -> Any:
    # Imported on first use: every grade touches grader.judge.injection, and an offline grade should
    # not pay for the judge's transport modules.
    if name == "resolve_backend":
        from grader.judge.structured import resolve_backend

        return resolve_backend
    raise AttributeError(name)
