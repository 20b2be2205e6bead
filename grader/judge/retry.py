"""Retry with exponential backoff and full jitter, honouring Retry-After, always bounded.

Only TransientError is retried (429, 5xx, connection errors, timeouts); everything else propagates at once.
An endpoint that asks to wait longer than the policy's ceiling (`Retry-After: 3600`) is not waited on:
the policy's circuit breaker opens, and every later call through the same policy -- every answer of the
run -- fails at once with that reason, so a batch falls back in seconds instead of waiting per answer.
Every reason is redacted (grader.redact): an endpoint may echo the request's Authorization header.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from grader.redact import redact

T = TypeVar("T")


class TransportError(Exception):
    """A failed request to the judge endpoint; `reason` is what the user sees (secrets masked)."""

    def __init__(self, reason: str) -> None:
        reason = redact(reason)
        super().__init__(reason)
        self.reason = reason


class TransientError(TransportError):
    """Worth retrying: rate limit, server error, connection trouble, timeout."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ModeRefused(TransportError):
    """The endpoint rejected the structured-output mode (e.g. llama.cpp and response_format json_schema)."""


class FatalError(TransportError):
    """Not worth retrying: bad credentials, unknown model, malformed request."""


class EndpointUnavailable(TransportError):
    """The circuit breaker is open: the endpoint asked to wait longer than we wait, for the rest of the run."""


@dataclass
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A server asking for a longer wait than this is treated as unavailable rather than waited on.
    max_retry_after: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    # Set once by the first over-long Retry-After; shared by every call made with this policy.
    open_reason: str | None = None

    def check_open(self) -> None:
        if self.open_reason is not None:
            raise EndpointUnavailable(self.open_reason)

    def trip(self, error: TransientError) -> EndpointUnavailable:
        self.open_reason = (
            f"judge endpoint unavailable for this run: it asked to wait {error.retry_after:g} s (Retry-After), "
            f"longer than the {self.max_retry_after:g} s we wait ({error.reason})"
        )
        return EndpointUnavailable(self.open_reason)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform(0, min(max_delay, base * 2**attempt)); at least Retry-After when given."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


@dataclass
class Attempts:
    """What happened across retries, for notes and tests."""

    count: int = 0
    errors: list[str] = field(default_factory=list)
    waited: float = 0.0


def _wait_or_raise(error: TransientError, attempt: int, policy: RetryPolicy, attempts: Attempts) -> float:
    """How long to wait before retrying after `error`; re-raises it once the retries are used up, and
    opens the breaker when the endpoint asks for a longer wait than the policy allows."""
    attempts.errors.append(error.reason)
    if error.retry_after is not None and error.retry_after > policy.max_retry_after:
        raise policy.trip(error) from error
    if attempt >= policy.max_retries:
        raise error
    wait = policy.delay(attempt, error.retry_after)
    attempts.waited += wait
    return wait


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy,
    attempts: Attempts | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    attempts = attempts if attempts is not None else Attempts()
    for attempt in range(policy.max_retries + 1):
        policy.check_open()
        attempts.count += 1
        try:
            return fn()
        except TransientError as e:
            sleep(_wait_or_raise(e, attempt, policy, attempts))
    raise AssertionError("unreachable")


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    attempts: Attempts | None = None,
) -> T:
    attempts = attempts if attempts is not None else Attempts()
    for attempt in range(policy.max_retries + 1):
        policy.check_open()
        attempts.count += 1
        try:
            return await fn()
        except TransientError as e:
            await asyncio.sleep(_wait_or_raise(e, attempt, policy, attempts))
    raise AssertionError("unreachable")
