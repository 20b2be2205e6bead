"""Any LangChain chat model by provider string (init_chat_model), e.g. 'anthropic:claude-...', 'ollama:llama3'.

Tool calling is LangChain's most portable structured method, so after json_schema this adapter tries
tools before json mode. Our retry policy rules here too: the provider client's retries are set to 0
where the provider accepts that setting. Logprobs are not read through this backend (the note says so).
"""

from __future__ import annotations

import threading
from typing import Any

from grader.config import JudgeSettings
from grader.judge.openai_backend import classify_error
from grader.judge.retry import FatalError
from grader.judge.structured import CallParams, RawReply
from grader.models import TokenUsage

_METHODS = {"json_schema": "json_schema", "tools": "function_calling", "json_object": "json_mode"}


def _init_kwargs(settings: JudgeSettings, temperature: float) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "temperature": temperature,
        "max_tokens": settings.max_tokens,
        "timeout": settings.timeout,
        "max_retries": 0,
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.api_key:
        kwargs["api_key"] = settings.api_key.get_secret_value()
    elif settings.base_url and (settings.provider or "").startswith("openai:"):
        kwargs["api_key"] = "sk-no-key-required"  # a local OpenAI-compatible server needs no key
    return kwargs


def _usage(message: Any) -> TokenUsage:
    meta = getattr(message, "usage_metadata", None) or {}
    prompt = int(meta.get("input_tokens", 0) or 0)
    completion = int(meta.get("output_tokens", 0) or 0)
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion,
                      total_tokens=int(meta.get("total_tokens", prompt + completion) or 0))


def _text(message: Any) -> str | None:
    content = getattr(message, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks (Anthropic and others)
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return None


def to_raw_reply(message: Any) -> RawReply:
    tool_calls = getattr(message, "tool_calls", None) or []
    meta = getattr(message, "response_metadata", None) or {}
    return RawReply(
        text=_text(message),
        tool_arguments=tool_calls[0].get("args") if tool_calls else None,
        usage=_usage(message),
        finish_reason=meta.get("finish_reason") or meta.get("stop_reason"),
        model=meta.get("model_name") or meta.get("model"),
    )


class LangChainTransport:
    backend = "langchain"
    mode_order: tuple[str, ...] = ("json_schema", "tools", "json_object", "text")

    def __init__(self, settings: JudgeSettings) -> None:
        if not settings.provider:
            raise FatalError("the langchain judge needs --provider, e.g. 'ollama:llama3' or 'anthropic:<model>'")
        self.settings = settings
        self.provider = settings.provider
        self.endpoint = settings.base_url
        self._models: dict[float, Any] = {}
        self._lock = threading.Lock()

    def model_name(self) -> str:
        return self.provider

    def chat_model(self, temperature: float) -> Any:
        # One model object per temperature: samples > 1 use a different temperature than single grades.
        with self._lock:
            if temperature not in self._models:
                from langchain.chat_models import init_chat_model

                try:
                    self._models[temperature] = init_chat_model(
                        self.provider, **_init_kwargs(self.settings, temperature)
                    )
                except Exception as e:  # unknown provider, missing integration package, bad kwargs
                    raise FatalError(f"cannot start LangChain model {self.provider!r}: {e}") from e
            return self._models[temperature]

    def _runnable(self, mode: str, schema: dict[str, Any], name: str, params: CallParams) -> Any:
        model = self.chat_model(params.temperature)
        if mode == "text":
            return model
        titled = {"title": name, "description": "Submit the structured result.", **schema}
        return model.with_structured_output(titled, method=_METHODS[mode], include_raw=True)

    @staticmethod
    def _unwrap(result: Any) -> RawReply:
        if isinstance(result, dict) and "raw" in result:
            reply = to_raw_reply(result["raw"])
            # A LangChain-parsed dict counts only where the raw message had no tool call to read.
            if reply.tool_arguments is None and isinstance(result.get("parsed"), dict) and not reply.text:
                reply.tool_arguments = result["parsed"]
            return reply
        return to_raw_reply(result)

    def complete(self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str,
                 params: CallParams) -> RawReply:
        try:
            runnable = self._runnable(mode, schema, name, params)
            result = runnable.invoke(messages)
        except FatalError:
            raise
        except Exception as e:
            raise classify_error(e, mode) from e
        return self._unwrap(result)

    async def acomplete(self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str,
                        params: CallParams) -> RawReply:
        try:
            runnable = self._runnable(mode, schema, name, params)
            result = await runnable.ainvoke(messages)
        except FatalError:
            raise
        except Exception as e:
            raise classify_error(e, mode) from e
        return self._unwrap(result)
