"""Retry policy, error classification, cache keys and logprob weighting: the pure parts of the judge."""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from grader.judge.cache import JudgeCache, cache_key
from grader.judge.logprobs import NO_LOGPROBS, weighted_score
from grader.judge.openai_backend import classify_error
from grader.judge.retry import (
    Attempts,
    FatalError,
    ModeRefused,
    RetryPolicy,
    TransientError,
    acall_with_retry,
    call_with_retry,
)
from grader.judge.schema import score_values


def test_full_jitter_delays_stay_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(1))
    for attempt in range(8):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
    assert len({round(policy.delay(3), 6) for _ in range(20)}) > 10


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_retry_after=5.0, rng=random.Random(0))
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=600.0) == 5.0


def _failing_then(outcomes: list[BaseException | str]) -> tuple[list[int], Callable[[], str]]:
    """A call that raises or returns each of `outcomes` in turn (the last one forever), counting calls."""
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return calls, call


def test_only_transient_errors_are_retried_and_retries_are_bounded() -> None:
    slept: list[float] = []
    attempts = Attempts()
    calls, flaky = _failing_then([TransientError("HTTP 503"), TransientError("HTTP 503"), "ok"])
    assert call_with_retry(flaky, RetryPolicy(max_retries=3), attempts, sleep=slept.append) == "ok"
    assert attempts.count == 3 and len(slept) == 2 and len(calls) == 3
    assert attempts.errors == ["HTTP 503", "HTTP 503"]

    calls, always_down = _failing_then([TransientError("HTTP 503")])
    with pytest.raises(TransientError):
        call_with_retry(always_down, RetryPolicy(max_retries=2), sleep=slept.append)
    assert len(calls) == 3

    calls, fatal = _failing_then([FatalError("HTTP 401")])
    with pytest.raises(FatalError):
        call_with_retry(fatal, RetryPolicy(max_retries=5), sleep=slept.append)
    assert len(calls) == 1


def test_async_retry_follows_the_same_policy() -> None:
    calls, flaky = _failing_then([TransientError("HTTP 429"), "ok"])

    async def aflaky() -> str:
        return flaky()

    attempts = Attempts()
    policy = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.002)
    assert asyncio.run(acall_with_retry(aflaky, policy, attempts)) == "ok"
    assert attempts.count == 2 and attempts.errors == ["HTTP 429"] and 0 <= attempts.waited <= 0.002
    calls, down = _failing_then([TransientError("HTTP 503")])

    async def adown() -> str:
        return down()

    with pytest.raises(TransientError):
        asyncio.run(acall_with_retry(adown, policy))
    assert len(calls) == 2


def _status_error(status: int, message: str, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 400: openai.BadRequestError,
           401: openai.AuthenticationError}.get(status, openai.APIStatusError)
    return cls(message, response=response, body={"error": {"message": message}})


@pytest.mark.parametrize(
    ("status", "message", "mode", "expected"),
    [
        (500, "Input should be 'text' or 'json_object' (response_format)", "json_schema", ModeRefused),
        (400, "tools are not supported", "tools", ModeRefused),
        (500, "upstream exploded", "json_schema", TransientError),
        (503, "overloaded", "text", TransientError),
        (429, "slow down", "json_object", TransientError),
        (401, "bad key", "json_object", FatalError),
        (400, "model does not exist", "json_object", FatalError),
    ],
)
def test_errors_are_classified(status: int, message: str, mode: str, expected: type) -> None:
    err = _status_error(status, message)
    assert type(classify_error(err, mode)) is expected


def test_rate_limit_carries_retry_after() -> None:
    err = _status_error(429, "slow down", {"retry-after": "2"})
    out = classify_error(err, "text")
    assert isinstance(out, TransientError) and out.retry_after == 2.0


def test_cache_key_covers_every_input_and_sample_index(tmp_path: Path) -> None:
    base = dict(prompt_hash="h", backend="openai", endpoint="http://x", model="m",
                params={"temperature": 0.0}, messages=[{"role": "user", "content": "a"}], schema={}, sample_index=0)
    k = cache_key(**base)
    assert k == cache_key(**dict(base))
    for field, value in [("prompt_hash", "h2"), ("model", "m2"), ("params", {"temperature": 0.7}),
                         ("messages", [{"role": "user", "content": "b"}]), ("sample_index", 1),
                         ("backend", "langchain"), ("endpoint", "http://y"), ("schema", {"a": 1})]:
        assert cache_key(**{**base, field: value}) != k, field
    cache = JudgeCache(tmp_path / "judge.sqlite")
    assert cache.get(k) is None
    cache.put(k, {"score": 3})
    assert JudgeCache(tmp_path / "judge.sqlite").get(k) == {"score": 3}  # persists across instances
    assert len(cache) == 1


def _tokens(text: str, at_score: list[tuple[str, float]]) -> list[dict]:
    out = []
    idx = text.rindex('"score": ') + len('"score": ')
    for i, ch in enumerate(text):
        tops = [{"token": t, "logprob": math.log(p)} for t, p in at_score] if i == idx else []
        out.append({"token": ch, "logprob": 0.0, "top_logprobs": tops})
    return out


def test_logprob_score_renormalises_over_valid_scores() -> None:
    text = '{"reasoning": "x \\"score\\": 9", "verdicts": {}, "score": 3, "feedback": ""}'
    toks = _tokens(text, [("3", 0.6), ("4", 0.2), ("9", 0.1), ("a", 0.1)])
    score, note = weighted_score(toks, score_values(5))
    assert score == pytest.approx((3 * 0.6 + 4 * 0.2) / 0.8)
    assert "renormalising" in note


def test_logprob_score_ignores_a_score_quoted_in_prose_around_the_verdict() -> None:
    # Text mode: the model quotes the answer's fake '"score": 5' after its verdict. Only the verdict counts.
    verdict = '{"reasoning": "x", "verdicts": {}, "score": 1, "feedback": ""}'
    text = verdict + '\nThe answer claimed "score": 5 for itself.'
    toks = _tokens(text, [("5", 0.9), ("4", 0.1)])  # alternatives at the fake score in the prose
    at_verdict = len(verdict) - len('1, "feedback": ""}')
    toks[at_verdict]["top_logprobs"] = [{"token": "1", "logprob": math.log(0.7)},
                                        {"token": "2", "logprob": math.log(0.3)}]
    score, _ = weighted_score(toks, score_values(5))
    assert score == pytest.approx(1 * 0.7 + 2 * 0.3)
    assert weighted_score(_tokens('"score": 5 and no verdict', [("5", 1.0)]), score_values(5))[0] is None


def test_logprob_score_says_so_when_there_is_nothing_to_read() -> None:
    assert weighted_score(None, score_values(5)) == (None, NO_LOGPROBS)
    text = '{"score": 3}'
    score, note = weighted_score(_tokens(text, [("a", 0.9)]), score_values(5))
    assert score is None and "no valid score" in note
    score, note = weighted_score(_tokens(text, [("3", 0.9)]), score_values(20))
    assert score is None and "multi-token" in note


def test_a_structured_method_a_model_lacks_is_a_refusal_not_a_failure() -> None:
    assert isinstance(classify_error(NotImplementedError("no json_schema"), "json_schema"), ModeRefused)
    assert isinstance(classify_error(NotImplementedError("x"), "text"), FatalError)
    assert isinstance(classify_error(ConnectionRefusedError("refused"), "text"), TransientError)


def test_local_server_generates_on_half_the_cores_unless_told() -> None:
    from grader.judge.local_server import LocalServer, default_threads

    assert default_threads() == max(1, (os.cpu_count() or 2) // 2)
    cmd = LocalServer(Path("m.gguf"), port=1).command()
    assert cmd[cmd.index("--n_threads") + 1] == str(default_threads())
    assert cmd[cmd.index("--n_threads_batch") + 1] == str(default_threads())
    cmd = LocalServer(Path("m.gguf"), port=1, n_threads=3).command()
    assert cmd[cmd.index("--n_threads") + 1] == "3" and cmd[cmd.index("--n_threads_batch") + 1] == "3"
