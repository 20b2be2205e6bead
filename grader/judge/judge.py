"""The Judge: prompt + rubric + answer -> JudgeResult, with cache, samples, usage and cost.

Never raises for endpoint trouble: every failure becomes JudgeResult(status="unscored", error=...).
With samples > 1 each sample has its own cache key (its index) and runs at temperature > 0
(settings.temperature if above 0, else SAMPLE_TEMPERATURE), so the samples can actually differ.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grader.config import Settings
from grader.judge.cache import JudgeCache, cache_key, default_cache_path
from grader.judge.logprobs import NO_LOGPROBS, weighted_score
from grader.judge.parse import ParsedVerdict, parse_verdict
from grader.judge.prompts import JudgePrompt, load_prompt
from grader.judge.render import build_messages
from grader.judge.retry import RetryPolicy, TransportError
from grader.judge.schema import score_values, verdict_schema
from grader.judge.structured import (
    CallParams,
    StructuredOutputError,
    StructuredReply,
    Transport,
    arun_structured,
    default_policy,
    make_transport,
    run_structured,
)
from grader.models import VERDICT_CREDIT, JudgeResult, Rubric, TokenUsage

SAMPLE_TEMPERATURE = 0.7
TOOL_NAME = "submit_verdict"
# The judge's score may differ from what its own verdicts imply; beyond this share of the scale we say so.
DISAGREEMENT_SHARE = 0.3


@dataclass
class _Prepared:
    rubric: Rubric
    messages: list[dict[str, str]]
    schema: dict[str, Any]
    ids: list[str]
    allowed: list[float]
    model: str


@dataclass
class _Sample:
    verdict: ParsedVerdict | None = None
    mode: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cached: bool = False
    error: str | None = None
    logprob_score: float | None = None
    logprobs_note: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_cache(self) -> dict[str, Any]:
        assert self.verdict is not None
        return {
            "verdict": self.verdict.model_dump(mode="json"), "mode": self.mode,
            "usage": self.usage.model_dump(mode="json"), "logprob_score": self.logprob_score,
            "logprobs_note": self.logprobs_note, "notes": self.notes,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> _Sample:
        return cls(
            verdict=ParsedVerdict(**data["verdict"]), mode=data["mode"], usage=TokenUsage(**data["usage"]),
            cached=True, logprob_score=data.get("logprob_score"), logprobs_note=data.get("logprobs_note"),
            notes=list(data.get("notes", [])),
        )


class Judge:
    def __init__(self, settings: Settings, *, transport: Transport | None = None,
                 cache: JudgeCache | None = None, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.js = settings.judge
        self.prompt: JudgePrompt = load_prompt(self.js.prompt, self.js.prompts_dir)
        self.transport = transport or make_transport(self.js)
        self.backend = self.transport.backend
        self.policy = policy or default_policy(self.js)
        self.cache = cache if cache is not None else (
            JudgeCache(default_cache_path(settings.cache_dir)) if self.js.cache else None
        )
        self.run_usage = TokenUsage()  # tokens actually spent by this Judge (cache hits cost nothing)
        self.requests = 0  # samples that went to the endpoint (not served from cache)
        # What those samples cost in HTTP requests: every attempt, including retries of transient errors,
        # refused structured-output modes and unparseable replies asked for again.
        self.attempts = 0
        self.rejected_replies = 0  # replies that came back but did not parse or validate
        self.rejected_usage = TokenUsage()  # and the tokens they cost (part of run_usage)
        self._usage_lock = threading.Lock()
        self._sync_slots = threading.BoundedSemaphore(self.js.concurrency)
        self._async_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    # ---- public API -------------------------------------------------------------------------------

    def judge(self, rubric: Rubric, answer: str) -> JudgeResult:
        prepared = self._prepare(rubric, answer)
        if isinstance(prepared, JudgeResult):
            return prepared
        samples = [self._sample(prepared, i) for i in range(self.js.samples)]
        return self._combine(prepared, samples)

    async def ajudge(self, rubric: Rubric, answer: str) -> JudgeResult:
        prepared = await asyncio.to_thread(self._prepare, rubric, answer)
        if isinstance(prepared, JudgeResult):
            return prepared
        samples = await asyncio.gather(*(self._asample(prepared, i) for i in range(self.js.samples)))
        return self._combine(prepared, list(samples))

    # ---- steps --------------------------------------------------------------------------------------

    def _model_label(self) -> str:
        return self.js.model or self.js.provider or "unknown"

    def _unscored(self, rubric: Rubric, error: str, model: str | None = None,
                  usage: TokenUsage | None = None, notes: list[str] | None = None) -> JudgeResult:
        return JudgeResult(
            status="unscored", max_score=rubric.max_score, error=error, prompt_version=self.prompt.label,
            prompt_hash=self.prompt.content_hash, model=model or self._model_label(), backend=self.backend,
            usage=self._priced(usage or TokenUsage()), notes=notes or [],
        )

    def _prepare(self, rubric: Rubric, answer: str) -> _Prepared | JudgeResult:
        try:
            model = self.transport.model_name()
        except TransportError as e:
            return self._unscored(rubric, f"judge endpoint unavailable: {e.reason}")
        return _Prepared(
            rubric=rubric, messages=build_messages(self.prompt, rubric, answer), schema=verdict_schema(rubric),
            ids=[c.id for c in rubric.criteria], allowed=score_values(rubric.max_score), model=model,
        )

    def _params(self) -> CallParams:
        temperature = self.js.temperature
        if self.js.samples > 1 and temperature <= 0:
            temperature = SAMPLE_TEMPERATURE
        return CallParams(temperature=temperature, max_tokens=self.js.max_tokens, logprobs=self.js.logprobs)

    def _key(self, p: _Prepared, index: int, params: CallParams) -> str:
        return cache_key(
            prompt_hash=self.prompt.content_hash, backend=self.backend, endpoint=self.transport.endpoint,
            model=p.model,
            params={"temperature": params.temperature, "max_tokens": params.max_tokens,
                    "logprobs": params.logprobs, "structured_mode": self.js.structured_mode},
            messages=p.messages, schema=p.schema, sample_index=index,
        )

    def _validator(self, p: _Prepared) -> Callable[[dict[str, Any]], ParsedVerdict]:
        return lambda data: parse_verdict(data, p.ids, p.allowed)

    def _from_reply(self, p: _Prepared, reply: StructuredReply) -> _Sample:
        # reply.parsed is what _validator returned for this very reply: no need to parse it again.
        assert isinstance(reply.parsed, ParsedVerdict)
        sample = _Sample(verdict=reply.parsed, mode=reply.mode, usage=reply.usage, notes=list(reply.notes))
        if self.js.logprobs:
            if reply.mode == "tools":
                sample.logprobs_note = "no logprobs in tools mode (the score is inside tool-call arguments)"
            elif self.backend == "langchain":
                sample.logprobs_note = "logprobs are not read through the langchain backend"
            else:
                sample.logprob_score, sample.logprobs_note = weighted_score(reply.logprobs, p.allowed)
        return sample

    def _lookup(self, key: str) -> _Sample | None:
        if self.cache is None:
            return None
        hit = self.cache.get(key)
        return _Sample.from_cache(hit) if hit is not None else None

    def _spent(self, usage: TokenUsage, attempts: int, rejected: int, rejected_usage: TokenUsage) -> None:
        """Count one sample that reached the endpoint, whatever came of it."""
        with self._usage_lock:
            self.run_usage = self.run_usage + self._priced(usage)
            self.requests += 1
            self.attempts += attempts
            self.rejected_replies += rejected
            self.rejected_usage = self.rejected_usage + rejected_usage

    def _store(self, key: str, sample: _Sample, reply: StructuredReply) -> None:
        self._spent(sample.usage, reply.attempts, reply.rejected, reply.rejected_usage)
        if self.cache is not None:
            self.cache.put(key, sample.to_cache())

    def _failed(self, e: StructuredOutputError) -> _Sample:
        self._spent(e.usage, e.attempts, e.rejected, e.usage if e.rejected else TokenUsage())
        return _Sample(error=e.reason, usage=e.usage, notes=e.notes)

    def _sample(self, p: _Prepared, index: int) -> _Sample:
        params = self._params()
        key = self._key(p, index, params)
        hit = self._lookup(key)
        if hit is not None:
            return hit
        try:
            with self._sync_slots:
                reply = run_structured(self.transport, self.js, p.messages, p.schema, TOOL_NAME, params,
                                       self.policy, validate=self._validator(p), model=p.model)
        except StructuredOutputError as e:
            return self._failed(e)
        sample = self._from_reply(p, reply)
        self._store(key, sample, reply)
        return sample

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._async_slots.get(loop)
        if sem is None:
            sem = asyncio.Semaphore(self.js.concurrency)
            self._async_slots[loop] = sem
        return sem

    async def _asample(self, p: _Prepared, index: int) -> _Sample:
        params = self._params()
        key = self._key(p, index, params)
        hit = await asyncio.to_thread(self._lookup, key) if self.cache is not None else None
        if hit is not None:
            return hit
        try:
            async with self._slots():
                reply = await arun_structured(self.transport, self.js, p.messages, p.schema, TOOL_NAME, params,
                                              self.policy, validate=self._validator(p), model=p.model)
        except StructuredOutputError as e:
            return self._failed(e)
        sample = self._from_reply(p, reply)
        if self.cache is None:
            self._store(key, sample, reply)  # counters only: not worth a thread hop
        else:
            await asyncio.to_thread(self._store, key, sample, reply)
        return sample

    # ---- combining samples ---------------------------------------------------------------------------

    def _priced(self, usage: TokenUsage) -> TokenUsage:
        pin, pout = self.js.price_per_1k_input, self.js.price_per_1k_output
        if pin is None and pout is None:
            return usage.model_copy(update={"cost_usd": None})
        cost = usage.prompt_tokens / 1000 * (pin or 0.0) + usage.completion_tokens / 1000 * (pout or 0.0)
        return usage.model_copy(update={"cost_usd": round(cost, 8)})

    def _combine(self, p: _Prepared, samples: list[_Sample]) -> JudgeResult:
        usage = sum((s.usage for s in samples), TokenUsage())
        notes: list[str] = []
        for s in samples:
            notes.extend(n for n in s.notes if n not in notes)
        scored = [(s, s.verdict) for s in samples if s.verdict is not None]
        if not scored:
            return self._unscored(p.rubric, samples[0].error or "judge failed", model=p.model, usage=usage,
                                  notes=notes)
        failed = [s for s in samples if s.verdict is None]
        if failed:
            notes.append(f"{len(failed)} of {len(samples)} samples failed: {failed[0].error}")
        scores = [v.score for _, v in scored]
        mean = statistics.fmean(scores)
        # The sample nearest the mean speaks for the verdicts and feedback (ties: the earliest).
        rep, verdict = min(scored, key=lambda sv: abs(sv[1].score - mean))
        disagreement = self._disagreement(p.rubric, verdict)
        if disagreement:
            notes.append(disagreement)
        ok = [s for s, _ in scored]
        logprob_score, logprobs_note = self._logprobs(ok)
        many = len(samples) > 1
        return JudgeResult(
            status="scored", score=round(mean, 4), max_score=p.rubric.max_score, verdicts=verdict.verdicts,
            feedback=verdict.feedback, reasoning=verdict.reasoning, prompt_version=self.prompt.label,
            prompt_hash=self.prompt.content_hash, model=p.model, backend=self.backend, mode=rep.mode,
            usage=self._priced(usage), cached=all(s.cached for s in ok),
            samples=scores if many else [],
            spread=round(statistics.pstdev(scores), 4) if many and len(scores) > 1 else (0.0 if many else None),
            logprob_score=logprob_score, logprobs_note=logprobs_note, notes=notes,
        )

    def _logprobs(self, ok: list[_Sample]) -> tuple[float | None, str | None]:
        if not self.js.logprobs:
            return None, None
        values = [s.logprob_score for s in ok if s.logprob_score is not None]
        note = next((s.logprobs_note for s in ok if s.logprobs_note), NO_LOGPROBS)
        if len(values) != len(ok):
            return None, note
        return round(statistics.fmean(values), 4), note

    @staticmethod
    def _disagreement(rubric: Rubric, verdict: ParsedVerdict) -> str | None:
        if not rubric.criteria:
            return None
        weights = dict(zip([c.id for c in rubric.criteria], rubric.normalised_weights(), strict=True))
        implied = rubric.max_score * sum(weights[v.id] * VERDICT_CREDIT[v.verdict] for v in verdict.verdicts)
        if abs(verdict.score - implied) > DISAGREEMENT_SHARE * rubric.max_score:
            return (f"judge's score {verdict.score:g} disagrees with its own verdicts, which imply {implied:.2f}; "
                    "the judge's score is kept")
        return None
