"""Structured output that negotiates with the endpoint.

Order tried (openai backend): json_schema -> json_object with a schema (llama.cpp) -> tool calling -> plain
text with the strict parser. A mode moves on only when the endpoint *refuses* it; a reply that does not
parse is retried in the same mode and then reported as a failure (never guessed at). The mode that
worked is remembered per (backend, endpoint, model) for the life of the process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from pydantic import BaseModel, Field

from grader.config import JudgeSettings
from grader.errors import JudgeUnavailable
from grader.judge.parse import VerdictParseError, extract_json_object
from grader.judge.retry import (
    Attempts,
    FatalError,
    ModeRefused,
    RetryPolicy,
    TransientError,
    TransportError,
    acall_with_retry,
    call_with_retry,
)
from grader.models import TokenUsage

MODES = ("json_schema", "json_object", "tools", "text")

# Replies that do not parse are asked for again at most this many extra times per mode.
MAX_PARSE_RETRIES = 2
# At temperature 0 the endpoint decodes greedily: asking again with the same request would buy the same
# unparseable reply at full price. Retries of unparseable replies therefore sample at least this warm.
PARSE_RETRY_TEMPERATURE = 0.7


@dataclass(frozen=True)
class CallParams:
    temperature: float
    max_tokens: int
    logprobs: bool = False
    top_logprobs: int = 10


@dataclass
class RawReply:
    text: str | None
    tool_arguments: str | dict[str, Any] | None = None
    usage: TokenUsage | None = None
    logprobs: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    model: str | None = None


class LogprobsRefused(ModeRefused):
    """The endpoint rejected the logprobs parameters (the request is repeated without them)."""


class Transport(Protocol):
    backend: str
    endpoint: str | None
    mode_order: tuple[str, ...]

    def model_name(self) -> str: ...

    def complete(
        self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str, params: CallParams
    ) -> RawReply: ...

    async def acomplete(
        self, messages: list[dict[str, str]], mode: str, schema: dict[str, Any], name: str, params: CallParams
    ) -> RawReply: ...


class StructuredReply(BaseModel):
    data: dict[str, Any]
    parsed: Any = Field(default=None, description="What `validate(data)` returned, so callers need not parse again.")
    mode: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str | None = None
    raw_text: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    attempts: int = 1
    rejected: int = Field(default=0, description="Replies that came back but did not parse or validate.")
    rejected_usage: TokenUsage = Field(
        default_factory=TokenUsage, description="Tokens those rejected replies cost (included in `usage`)."
    )
    notes: list[str] = Field(default_factory=list)


class StructuredOutputError(JudgeUnavailable):
    """No valid structured reply. `usage` holds the tokens the failed attempts still cost."""

    def __init__(self, reason: str, usage: TokenUsage | None = None, attempts: int = 0,
                 notes: list[str] | None = None, rejected: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.usage = usage or TokenUsage()
        self.attempts = attempts
        self.notes = notes or []
        self.rejected = rejected  # every reply that came back was rejected: all of `usage` was spent for nothing


_MODE_MEMORY: dict[tuple[str, str | None, str], str] = {}
_MEMORY_LOCK = threading.Lock()


def remembered_mode(backend: str, endpoint: str | None, model: str) -> str | None:
    with _MEMORY_LOCK:
        return _MODE_MEMORY.get((backend, endpoint, model))


def forget_modes() -> None:
    """Drop what the process learnt about endpoints, so the next call negotiates afresh."""
    with _MEMORY_LOCK:
        _MODE_MEMORY.clear()


def mode_order(transport: Transport, fixed: str, model: str) -> list[str]:
    if fixed != "auto":
        return [fixed]
    order = list(transport.mode_order)
    known = remembered_mode(transport.backend, transport.endpoint, model)
    if known in order:
        order = order[order.index(known):]
    return order


def messages_for_mode(messages: list[dict[str, str]], mode: str, schema: dict[str, Any]) -> list[dict[str, str]]:
    """In text mode nothing enforces the shape, so the schema itself goes into the last user message."""
    if mode != "text":
        return messages
    out = [dict(m) for m in messages]
    out[-1]["content"] += (
        "\n\nReply with only one JSON object (no prose, no code fence) that matches this JSON schema:\n"
        + json.dumps(schema, ensure_ascii=False)
    )
    return out


def decode_reply(raw: RawReply, mode: str) -> dict[str, Any]:
    """The reply's JSON object: tool-call arguments in tools mode, else the message text."""
    if mode == "tools" and raw.tool_arguments is not None:
        if isinstance(raw.tool_arguments, dict):
            return raw.tool_arguments
        try:
            value = json.loads(raw.tool_arguments)
        except json.JSONDecodeError as e:
            raise VerdictParseError(f"tool-call arguments are not valid JSON ({e.msg} at char {e.pos})") from e
        if not isinstance(value, dict):
            raise VerdictParseError("tool-call arguments are not a JSON object")
        return value
    return extract_json_object(raw.text or "")


Outcome = RawReply | TransportError  # what one call (with its transient retries) ended in


class _Negotiation:
    """Which mode to try, how often, and what went wrong: the decisions shared by the sync and async calls.

    `steps()` is sans-I/O: it yields the mode to call next and is sent back what that call ended in, so
    the negotiation is written once and `run_structured` / `arun_structured` only make the calls.
    """

    def __init__(self, transport: Transport, settings: JudgeSettings, model: str,
                 validate: Callable[[dict[str, Any]], Any] | None, params: CallParams) -> None:
        self.transport = transport
        self.model = model
        self.validate = validate
        self.params = params
        self.order = mode_order(transport, settings.structured_mode, model)
        self.parse_tries = 1 + min(MAX_PARSE_RETRIES, settings.max_retries)
        self.usage = TokenUsage()
        self.rejected_usage = TokenUsage()
        self.rejected = 0
        self.attempts = 0
        self.notes: list[str] = []
        self.last_error: str | None = None

    def steps(self) -> Generator[str, tuple[Outcome, Attempts], StructuredReply]:
        """Yields a mode, receives (outcome, attempts of that call); returns the reply or raises."""
        for mode in self.order:
            tries = 0
            while tries < self.parse_tries:
                outcome, tried = yield mode
                self.attempts += tried.count
                if isinstance(outcome, LogprobsRefused):
                    # Asked again at once without logprobs; the refusal is not a try of this mode.
                    self.params = replace(self.params, logprobs=False)
                    self.notes.append(f"endpoint refused logprobs: {outcome.reason[:200]}")
                    continue
                if isinstance(outcome, ModeRefused):
                    self.notes.append(f"endpoint refused {mode} mode: {outcome.reason[:200]}")
                    break
                if isinstance(outcome, TransientError):
                    raise self._give_up(
                        f"judge endpoint unavailable after {tried.count} attempts: {outcome.reason}"
                    ) from outcome
                if isinstance(outcome, TransportError):
                    raise self._give_up(outcome.reason) from outcome
                tries += 1
                reply = self._accept(outcome, mode)
                if reply is not None:
                    return reply
                if tries < self.parse_tries:
                    self._warm_up_retry()
            else:
                raise self._give_up(f"{self.last_error} (after {self.parse_tries} tries)")
        raise self._give_up("the endpoint refused every structured-output mode tried: " + ", ".join(self.order))

    def _warm_up_retry(self) -> None:
        if self.params.temperature <= 0:
            self.notes.append(f"unparseable reply asked for again at temperature {PARSE_RETRY_TEMPERATURE} "
                              "(at 0 the same request would return the same reply)")
            self.params = replace(self.params, temperature=PARSE_RETRY_TEMPERATURE)

    def _accept(self, raw: RawReply, mode: str) -> StructuredReply | None:
        """A StructuredReply when the reply validates; None (and the reason kept) when it does not."""
        if raw.usage is not None:
            self.usage = self.usage + raw.usage
        try:
            data = decode_reply(raw, mode)
            parsed = self.validate(data) if self.validate is not None else None
        except (VerdictParseError, ValueError) as e:
            self.rejected += 1
            if raw.usage is not None:
                self.rejected_usage = self.rejected_usage + raw.usage
            cut = " (reply cut off at max_tokens)" if raw.finish_reason == "length" else ""
            self.last_error = f"unparseable reply in {mode} mode{cut}: {e}"
            self.notes.append(self.last_error[:300])
            return None
        with _MEMORY_LOCK:
            _MODE_MEMORY[(self.transport.backend, self.transport.endpoint, self.model)] = mode
        return StructuredReply(
            data=data, parsed=parsed, mode=mode, usage=self.usage, model=raw.model or self.model,
            raw_text=raw.text, logprobs=raw.logprobs, attempts=self.attempts, rejected=self.rejected,
            rejected_usage=self.rejected_usage, notes=self.notes,
        )

    def _give_up(self, reason: str) -> StructuredOutputError:
        return StructuredOutputError(reason, usage=self.usage, attempts=self.attempts, notes=self.notes,
                                     rejected=self.rejected)


def run_structured(transport: Transport, settings: JudgeSettings, messages: list[dict[str, str]],
                   schema: dict[str, Any], name: str, params: CallParams, policy: RetryPolicy,
                   validate: Callable[[dict[str, Any]], Any] | None = None,
                   model: str | None = None) -> StructuredReply:
    neg = _Negotiation(transport, settings, model or transport.model_name(), validate, params)
    steps = neg.steps()
    mode = next(steps)
    while True:
        msgs = messages_for_mode(messages, mode, schema)
        call = partial(transport.complete, msgs, mode, schema, name, neg.params)
        tried = Attempts()
        try:
            outcome: Outcome = call_with_retry(call, policy, tried)
        except TransportError as e:
            outcome = e
        try:
            mode = steps.send((outcome, tried))
        except StopIteration as done:
            return done.value


async def arun_structured(transport: Transport, settings: JudgeSettings, messages: list[dict[str, str]],
                          schema: dict[str, Any], name: str, params: CallParams, policy: RetryPolicy,
                          validate: Callable[[dict[str, Any]], Any] | None = None,
                          model: str | None = None) -> StructuredReply:
    neg = _Negotiation(transport, settings, model or transport.model_name(), validate, params)
    steps = neg.steps()
    mode = next(steps)
    while True:
        msgs = messages_for_mode(messages, mode, schema)
        call = partial(transport.acomplete, msgs, mode, schema, name, neg.params)
        tried = Attempts()
        try:
            outcome: Outcome = await acall_with_retry(call, policy, tried)
        except TransportError as e:
            outcome = e
        try:
            mode = steps.send((outcome, tried))
        except StopIteration as done:
            return done.value


def resolve_backend(settings: JudgeSettings) -> str:
    """'none', 'openai' or 'langchain' ("auto": openai if a base URL or key is set, langchain if a provider)."""
    if settings.backend != "auto":
        return settings.backend
    if settings.base_url or settings.api_key:
        return "openai"
    if settings.provider:
        return "langchain"
    return "none"


def make_transport(settings: JudgeSettings) -> Transport:
    backend = resolve_backend(settings)
    if backend == "openai":
        from grader.judge.openai_backend import OpenAITransport

        return OpenAITransport(settings)
    if backend == "langchain":
        from grader.judge.langchain_backend import LangChainTransport

        return LangChainTransport(settings)
    raise JudgeUnavailable("no judge endpoint configured (set --base-url/--model, an API key, or --provider)")


def default_policy(settings: JudgeSettings) -> RetryPolicy:
    return RetryPolicy(max_retries=settings.max_retries)


def request_structured(
    settings: JudgeSettings,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    name: str,
    *,
    validate: Callable[[dict[str, Any]], Any] | None = None,
    transport: Transport | None = None,
    policy: RetryPolicy | None = None,
) -> StructuredReply:
    """One structured reply matching `schema`, via whichever mode the endpoint accepts.

    `validate(data)` may raise ValueError to reject a reply (it is then asked for again, boundedly).
    Raises StructuredOutputError (a JudgeUnavailable, exit code 3) with the reason when no valid reply comes.
    """
    transport = transport or make_transport(settings)
    params = CallParams(temperature=settings.temperature, max_tokens=settings.max_tokens, logprobs=settings.logprobs)
    try:
        model = transport.model_name()
    except FatalError as e:
        raise StructuredOutputError(e.reason) from e
    except TransientError as e:
        raise StructuredOutputError(f"judge endpoint unavailable: {e.reason}") from e
    return run_structured(transport, settings, messages, schema, name, params,
                          policy or default_policy(settings), validate=validate, model=model)
