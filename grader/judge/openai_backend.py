"""The openai SDK against any OpenAI-compatible base URL (OpenAI, Azure, vLLM, Ollama, llama.cpp, LM Studio).

The SDK's own retries are off (max_retries=0): our policy (retry.py) decides, so retries are bounded
and counted the same way for every backend.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from typing import Any

from grader.config import JudgeSettings
from grader.judge.retry import FatalError, ModeRefused, TransientError, TransportError
from grader.judge.structured import MODES, CallParams, LogprobsRefused, RawReply
from grader.models import TokenUsage
from grader.redact import redact

# Words an error body uses when the endpoint rejects a structured-output feature rather than the request.
_MODE_WORDS = {
    "json_schema": ("json_schema", "response_format"),
    "json_object": ("json_object", "response_format"),
    "tools": ("tool", "function"),
    "text": (),
}
_REFUSAL_STATUS = {400, 404, 415, 422, 500, 501}
_PLACEHOLDER_KEY = "sk-no-key-required"


def _status_of(e: BaseException) -> int | None:
    status = getattr(e, "status_code", None)
    if status is None:
        status = getattr(getattr(e, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(e: BaseException) -> float | None:
    headers = getattr(getattr(e, "response", None), "headers", None)
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            value = headers["retry-after"]
            try:
                return float(value)
            except ValueError:
                # An HTTP date (RFC 9110): the wait is the time until then.
                from email.utils import parsedate_to_datetime

                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None  # garbage: fall back to our own backoff
    return None


def _message(e: BaseException) -> str:
    body = getattr(e, "body", None)
    text = str(e)
    if body is not None and str(body) not in text:
        text += f" {body}"
    # Masked before it is cut: a key cut in half would no longer be recognised.
    return redact(" ".join(text.split()))[:500]


def classify_error(e: BaseException, mode: str, asked_logprobs: bool = False) -> TransportError:
    """Map any client exception (openai SDK or a LangChain provider's) onto retry/refuse/fatal."""
    if isinstance(e, TransportError):
        return e
    if isinstance(e, json.JSONDecodeError) or type(e).__name__ == "APIResponseValidationError":
        # A cut-off or mangled HTTP body (proxy, crash mid-write): worth asking again.
        return TransientError(f"malformed response body from the endpoint: {str(e)[:200]}")
    if isinstance(e, NotImplementedError) and mode != "text":
        # A LangChain model without this structured-output method: try the next mode.
        return ModeRefused(f"{mode} not implemented by this model: {str(e)[:200]}")
    name = type(e).__name__
    status = _status_of(e)
    msg = _message(e)
    lowered = msg.lower()
    if status in _REFUSAL_STATUS or (status is None and isinstance(e, ValueError)):
        if asked_logprobs and "logprob" in lowered:
            return LogprobsRefused(f"HTTP {status}: {msg}")
        if any(w in lowered for w in _MODE_WORDS.get(mode, ())):
            return ModeRefused(f"HTTP {status}: {msg}" if status else f"{name}: {msg}")
    if "Timeout" in name or isinstance(e, TimeoutError):
        return TransientError(f"timed out ({name})")
    if status == 429 or "RateLimit" in name:
        return TransientError(f"rate limited (HTTP 429): {msg[:200]}", retry_after=_retry_after(e))
    if status is not None and (status >= 500 or status in (408, 409)):
        return TransientError(f"server error HTTP {status}: {msg[:200]}", retry_after=_retry_after(e))
    if status is None and ("Connection" in name or isinstance(e, ConnectionError | OSError)):
        return TransientError(f"connection error ({name}): {msg[:200]}")
    if status is not None:
        return FatalError(f"HTTP {status}: {msg}")
    return FatalError(f"{name}: {msg}")


def request_kwargs(model: str, messages: list[dict[str, str]], mode: str, schema: dict[str, Any],
                   name: str, params: CallParams) -> dict[str, Any]:
    from grader.judge.schema import strict_schema

    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
    }
    if mode == "json_schema":
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": strict_schema(schema), "strict": True},
        }
    elif mode == "json_object":
        # llama.cpp turns the extra "schema" key into a grammar; OpenAI-proper ignores it.
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    elif mode == "tools":
        kwargs["tools"] = [{
            "type": "function",
            "function": {"name": name, "description": "Submit the structured result.", "parameters": schema},
        }]
        kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
    if params.logprobs and mode != "tools":
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = params.top_logprobs
    return kwargs


def to_raw_reply(resp: Any) -> RawReply:
    """Pull what we need out of a ChatCompletion; a reply of the wrong shape is a parse failure, not a crash."""
    try:
        choice = resp.choices[0]
        message = choice.message
        tool_args = None
        if getattr(message, "tool_calls", None):
            tool_args = message.tool_calls[0].function.arguments
        logprobs = None
        lp = getattr(choice, "logprobs", None)
        if lp is not None and getattr(lp, "content", None):
            logprobs = [t.model_dump() if hasattr(t, "model_dump") else dict(t) for t in lp.content]
        usage = TokenUsage()
        if getattr(resp, "usage", None) is not None:
            u = resp.usage
            usage = TokenUsage(
                prompt_tokens=u.prompt_tokens or 0,
                completion_tokens=u.completion_tokens or 0,
                total_tokens=u.total_tokens or (u.prompt_tokens or 0) + (u.completion_tokens or 0),
            )
        return RawReply(
            text=message.content, tool_arguments=tool_args, usage=usage, logprobs=logprobs,
            finish_reason=choice.finish_reason, model=getattr(resp, "model", None),
        )
    except (AttributeError, IndexError, TypeError, KeyError) as e:
        # Shape errors are answered with an empty reply, which the parser rejects with a reason.
        return RawReply(text=None, finish_reason=f"malformed response: {type(e).__name__}")


class OpenAITransport:
    backend = "openai"
    mode_order: tuple[str, ...] = MODES

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.endpoint = settings.base_url
        self._model: str | None = settings.model
        self._client: Any = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _client_kwargs(self) -> dict[str, Any]:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        if key is None and self.settings.base_url:
            key = _PLACEHOLDER_KEY  # local servers need no key, but the SDK insists on one
        if key is None:
            raise FatalError("no API key for the openai judge (set OPENAI_API_KEY) and no --base-url")
        kwargs: dict[str, Any] = {"api_key": key, "timeout": self.settings.timeout, "max_retries": 0}
        if self.settings.base_url:
            kwargs["base_url"] = self.settings.base_url
        return kwargs

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from openai import OpenAI

                self._client = OpenAI(**self._client_kwargs())
            return self._client

    def aclient(self) -> Any:
        # One async client per event loop: an httpx pool must not outlive the loop it was made in.
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._aclients.get(loop)
            if client is None:
                from openai import AsyncOpenAI

                client = AsyncOpenAI(**self._client_kwargs())
                self._aclients[loop] = client
            return client

    def model_name(self) -> str:
        """The configured model; with none, the endpoint's only model (llama.cpp, LM Studio serve one)."""
        if self._model:
            return self._model
        if not self.settings.base_url:
            raise FatalError("no judge model configured (--model)")
        try:
            models = [m.id for m in self.client().models.list()]
        except Exception as e:
            raise classify_error(e, "text") from e
        if len(models) != 1:
            raise FatalError(f"no --model given and the endpoint serves {len(models)} models: {models[:5]}")
        self._model = models[0]
        return self._model

    def complete(self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str,
                 params: CallParams) -> RawReply:
        kwargs = request_kwargs(self.model_name(), messages, mode, schema, name, params)
        try:
            resp = self.client().chat.completions.create(**kwargs)
        except Exception as e:
            raise classify_error(e, mode, params.logprobs) from e
        return to_raw_reply(resp)

    async def acomplete(self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str,
                        params: CallParams) -> RawReply:
        kwargs = request_kwargs(self.model_name(), messages, mode, schema, name, params)
        try:
            resp = await self.aclient().chat.completions.create(**kwargs)
        except Exception as e:
            raise classify_error(e, mode, params.logprobs) from e
        return to_raw_reply(resp)
