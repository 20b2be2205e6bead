"""Judge throughput through our Judge vs the same requests posted raw to the same server, in the same run.

The raw baseline sends, for each answer, exactly the body of the judge's first attempt (same messages,
response_format for the negotiated mode, temperature and max_tokens), with the same concurrency, over
one reused HTTP client, and only reads the usage back. What the ratio prices is our overhead:
rendering, parsing, validation and -- the big one with a small model -- unparseable replies asked for
again. Those retries are a real cost and stay in the answers/s ratio; the completion-tokens/s ratio
beside it is the per-token price of the plumbing, and the retry figures say where the difference went.

Fairness, measured rather than assumed:
- temperature 0 on both paths, so the same body decodes to the same reply (the report counts the
  answers whose first reply had the same length on both paths);
- the two paths alternate in chunks of `concurrency` answers (judge, raw | raw, judge | ...), so load
  from other processes on a shared machine drifts over both alike; each chunk's ratio is printed;
- before each chunk an untimed one-token request to an unrelated prompt clears llama.cpp's reused
  prompt prefix, so neither path inherits the other's last prompt;
- our own CPU time per answer (the client process) is printed for both paths: it is the plumbing's
  cost, and unlike wall time it does not move with the server's load;
- requests are counted by the server (its access log), and its CPU time is read per path, so a wall-
  clock gap caused by CPU contention (same server CPU per token) is told apart from real extra work.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grader.config import Settings


class Endpoint(Protocol):
    """What the benchmark needs of a server: LocalServer (and the tests' FaultServer) provide it."""

    @property
    def base_url(self) -> str: ...

    def completions_served(self) -> int: ...

    def cpu_seconds(self) -> float | None: ...


@dataclass
class PathStats:
    """One path's totals over all its chunks."""

    answers: int = 0
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_requests: int = 0
    server_cpu_s: float | None = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    chunk_tokens_per_s: list[float] = field(default_factory=list)

    chunk_answers_per_s: list[float] = field(default_factory=list)

    def add_chunk(self, answers: int, seconds: float, requests: int, cpu: float | None, tokens: int,
                  client_cpu: float) -> None:
        self.answers += answers
        self.seconds += seconds
        self.client_cpu_s += client_cpu
        self.chunk_answers_per_s.append(answers / seconds if seconds else 0.0)
        self.server_requests += requests
        self.server_cpu_s = None if cpu is None or self.server_cpu_s is None else self.server_cpu_s + cpu
        self.chunk_tokens_per_s.append(round(tokens / seconds, 1) if seconds else 0.0)

    def answers_per_s(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0

    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def cpu_ms_per_token(self) -> float | None:
        if self.server_cpu_s is None or not self.completion_tokens:
            return None
        return round(1000 * self.server_cpu_s / self.completion_tokens, 2)


@dataclass
class RawReplyStats:
    completion_tokens: int
    prompt_tokens: int
    finish_reason: str | None
    parses: bool
    failed: bool = False


def _load(answers: Path, n: int, grader: Any) -> list[tuple[Any, str]]:
    items: list[tuple[Any, str]] = []
    with answers.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            items.append((grader.rubric(row["question_id"]), row["answer"]))
            if len(items) >= n:
                break
    return items


def _cpu(endpoint: Endpoint) -> float | None:
    return endpoint.cpu_seconds()


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


async def _timed(coro: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - t0


def raw_reply_parses(reply: dict[str, Any], mode: str, rubric: Any) -> bool:
    """Would the judge have accepted this raw reply? (Same decoder and validator as the judge.)"""
    from grader.judge.parse import parse_verdict
    from grader.judge.schema import score_values
    from grader.judge.structured import RawReply, decode_reply

    try:
        message = reply["choices"][0]["message"]
        tool_calls = message.get("tool_calls") or []
        raw = RawReply(text=message.get("content"),
                       tool_arguments=tool_calls[0]["function"]["arguments"] if tool_calls else None)
        data = decode_reply(raw, mode)
        parse_verdict(data, [c.id for c in rubric.criteria], score_values(rubric.max_score))
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return True


async def _forget_prefix(client: Any, model: str | None) -> None:
    """One tiny unrelated completion, untimed: llama.cpp reuses the KV cache of the previous prompt's
    common prefix, so without this a path could start on the exact prompt the other path just ended on
    and skip its prompt evaluation. Every chunk of either path starts from the same cold prefix."""
    await client.post("/chat/completions", json={
        "model": model or "", "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 1,
        "temperature": 0.0,
    })


async def _raw_one(client: Any, sem: asyncio.Semaphore, body: dict[str, Any], mode: str,
                   rubric: Any) -> RawReplyStats:
    import httpx

    try:
        async with sem:
            r = await client.post("/chat/completions", json=body)
    except httpx.HTTPError:
        return RawReplyStats(0, 0, None, False, failed=True)
    if r.status_code != 200:
        return RawReplyStats(0, 0, None, False, failed=True)
    data = r.json()
    usage = data.get("usage") or {}
    choice = (data.get("choices") or [{}])[0]
    return RawReplyStats(int(usage.get("completion_tokens") or 0), int(usage.get("prompt_tokens") or 0),
                         choice.get("finish_reason"), raw_reply_parses(data, mode, rubric))


def _rejections(result: Any) -> int:
    return sum(1 for n in result.notes if n.startswith("unparseable reply in "))


async def _run(endpoint: Endpoint, judge: Any, items: list[tuple[Any, str]], bodies: list[dict[str, Any]],
               mode: str, concurrency: int, timeout: float, model: str | None) -> dict[str, Any]:
    import httpx

    judge_stats, raw_stats = PathStats(), PathStats()
    results: list[Any] = [None] * len(items)
    raws: list[RawReplyStats | None] = [None] * len(items)
    sem = asyncio.Semaphore(concurrency)
    chunk = concurrency
    order: list[str] = []
    async with httpx.AsyncClient(base_url=endpoint.base_url, timeout=timeout) as client:

        async def judge_chunk(idx: list[int]) -> None:
            await _forget_prefix(client, model)
            served, cpu, mine = endpoint.completions_served(), _cpu(endpoint), time.process_time()
            t0 = time.perf_counter()
            timed = await asyncio.gather(*(_timed(judge.ajudge(*items[i])) for i in idx))
            dt = time.perf_counter() - t0
            tokens = 0
            for i, (res, lat) in zip(idx, timed, strict=True):
                results[i] = res
                judge_stats.latencies.append(lat)
                judge_stats.prompt_tokens += res.usage.prompt_tokens
                tokens += res.usage.completion_tokens
            judge_stats.completion_tokens += tokens
            judge_stats.add_chunk(len(idx), dt, endpoint.completions_served() - served,
                                  _delta(_cpu(endpoint), cpu), tokens, time.process_time() - mine)

        async def raw_chunk(idx: list[int]) -> None:
            await _forget_prefix(client, model)
            served, cpu, mine = endpoint.completions_served(), _cpu(endpoint), time.process_time()
            t0 = time.perf_counter()
            timed = await asyncio.gather(*(_timed(_raw_one(client, sem, bodies[i], mode, items[i][0])) for i in idx))
            dt = time.perf_counter() - t0
            tokens = 0
            for i, (rep, lat) in zip(idx, timed, strict=True):
                raws[i] = rep
                raw_stats.latencies.append(lat)
                raw_stats.prompt_tokens += rep.prompt_tokens
                tokens += rep.completion_tokens
            raw_stats.completion_tokens += tokens
            raw_stats.add_chunk(len(idx), dt, endpoint.completions_served() - served,
                                _delta(_cpu(endpoint), cpu), tokens, time.process_time() - mine)

        for k, start in enumerate(range(0, len(items), chunk)):
            idx = list(range(start, min(start + chunk, len(items))))
            pair = (("judge", judge_chunk), ("raw", raw_chunk))
            for name, run in pair if k % 2 == 0 else pair[::-1]:
                order.append(name)
                await run(idx)
    return {"judge": judge_stats, "raw": raw_stats, "results": results, "raws": raws, "order": order}


def run_judge_bench(n: int, concurrency: int, answers: Path, base: Settings, max_tokens: int = 512, *,
                    endpoint: Endpoint | None = None, server_threads: int | None = None) -> dict[str, Any]:
    """Start the local llama.cpp server (unless `endpoint` is given) and measure both paths on it."""
    from grader.judge.local_server import LocalServer

    if endpoint is not None:
        return _bench(endpoint, getattr(endpoint, "model", None), n, concurrency, answers, base, max_tokens)
    kwargs: dict[str, Any] = {} if server_threads is None else {"n_threads": server_threads}
    with LocalServer(**kwargs) as srv:
        report = _bench(srv, srv.model, n, concurrency, answers, base, max_tokens)
    report["server_threads"] = srv.n_threads
    report["server_threads_batch"] = srv.n_threads_batch
    report["server_parallel_slots"] = 1
    report["note"] = (
        "llama-cpp-python's server runs one completion at a time (a global lock, no parallel slots), so "
        "concurrency only overlaps client work with server work. A 135M model exercises the plumbing "
        "only; its verdicts are not grades."
    )
    return report


def _bench(endpoint: Endpoint, model: str | None, n: int, concurrency: int, answers: Path, base: Settings,
           max_tokens: int) -> dict[str, Any]:
    from grader.judge import make_judge
    from grader.judge.judge import TOOL_NAME
    from grader.judge.openai_backend import request_kwargs
    from grader.judge.render import build_messages
    from grader.judge.schema import verdict_schema
    from grader.judge.structured import forget_modes, messages_for_mode
    from grader.models import TokenUsage
    from grader.pipeline.grader import Grader

    settings = base.model_copy(deep=True)
    js = settings.judge
    js.backend, js.base_url, js.model = "openai", endpoint.base_url, model
    js.cache, js.concurrency, js.api_key, js.max_tokens = False, concurrency, None, max_tokens
    # Greedy decoding on both paths: one body, one reply, comparable token counts.
    js.temperature, js.samples, js.logprobs = 0.0, 1, False
    # Same patience on both paths: the server queues what it cannot run in parallel.
    js.timeout = max(js.timeout, 900.0)
    grader = Grader(settings)
    items = _load(answers, n, grader)
    judge = make_judge(settings)
    assert judge is not None

    # Warm-up, outside the timings: mode negotiation (a refused json_schema request on llama.cpp) and the
    # server's first-call costs. It uses an answer outside the measured set when there is one.
    forget_modes()
    served = endpoint.completions_served()
    extra = _load(answers, n + 1, grader)
    warm = extra[-1] if len(extra) > len(items) else items[0]
    warm_result = judge.judge(*warm)
    negotiation_requests = endpoint.completions_served() - served
    mode = warm_result.mode or "json_object"
    judge.requests = judge.attempts = judge.rejected_replies = 0
    judge.rejected_usage = TokenUsage()

    params = judge._params()
    bodies = []
    for rubric, answer in items:
        schema = verdict_schema(rubric)
        msgs = messages_for_mode(build_messages(judge.prompt, rubric, answer), mode, schema)
        bodies.append(request_kwargs(judge.transport.model_name(), msgs, mode, schema, TOOL_NAME, params))

    load_before = os.getloadavg()[0]
    out = asyncio.run(_run(endpoint, judge, items, bodies, mode, concurrency, js.timeout, model))
    load_after = os.getloadavg()[0]
    j: PathStats = out["judge"]
    r: PathStats = out["raw"]
    results, raws = out["results"], out["raws"]

    scored = sum(1 for x in results if x.status == "scored")
    retried_answers = sum(1 for x in results if _rejections(x))
    # Answers the judge got on the first try: at temperature 0 their reply should match the raw one.
    first_try = [(x, w) for x, w in zip(results, raws, strict=True) if not _rejections(x) and x.status == "scored"]
    same_length = sum(1 for x, w in first_try if w is not None and x.usage.completion_tokens == w.completion_tokens)
    rejected_tokens = judge.rejected_usage.completion_tokens
    j_rate, r_rate = j.answers_per_s(), r.answers_per_s()
    j_tps, r_tps = j.tokens_per_s(), r.tokens_per_s()
    return {
        "benchmark": "judge",
        "answers": len(items),
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "temperature": js.temperature,
        "model": model,
        "mode": mode,
        "order": out["order"],
        "negotiation_requests_before_timing": negotiation_requests,
        # answers per second: the headline, retries included
        "judge_answers_per_s": round(j_rate, 4),
        "baseline_raw_answers_per_s": round(r_rate, 4),
        "ratio_judge_to_raw": round(j_rate / r_rate, 3) if r_rate else None,
        # completion tokens per second: the plumbing's price per generated token
        "judge_completion_tokens_per_s": round(j_tps, 2),
        "baseline_raw_completion_tokens_per_s": round(r_tps, 2),
        "ratio_judge_to_raw_tokens_per_s": round(j_tps / r_tps, 3) if r_tps else None,
        "judge_completion_tokens": j.completion_tokens,
        "baseline_raw_completion_tokens": r.completion_tokens,
        "judge_prompt_tokens": j.prompt_tokens,
        "baseline_raw_prompt_tokens": r.prompt_tokens,
        # where the judge's extra requests went (counted by the server, and by the judge itself)
        "judge_server_requests": j.server_requests,
        "baseline_raw_server_requests": r.server_requests,
        "judge_requests_per_answer": round(j.server_requests / len(items), 3) if items else None,
        "baseline_raw_requests_per_answer": round(r.server_requests / len(items), 3) if items else None,
        "judge_attempts_counted_by_judge": judge.attempts,
        "judge_rejected_replies": judge.rejected_replies,
        "judge_answers_retried": retried_answers,
        "judge_rejected_completion_tokens": rejected_tokens,
        "judge_share_of_tokens_spent_on_rejected_replies": (
            round(rejected_tokens / j.completion_tokens, 3) if j.completion_tokens else None
        ),
        "judge_scored": scored,
        "judge_unscored": len(items) - scored,
        "baseline_raw_failed": sum(1 for w in raws if w is None or w.failed),
        "baseline_raw_unparseable": sum(1 for w in raws if w is not None and not w.failed and not w.parses),
        "baseline_raw_cut_off_at_max_tokens": sum(1 for w in raws if w is not None and w.finish_reason == "length"),
        "first_try_answers_with_same_reply_length_on_both_paths": f"{same_length}/{len(first_try)}",
        # latency and server-side work
        "judge_s_per_server_request": round(j.seconds / j.server_requests, 2) if j.server_requests else None,
        "baseline_raw_s_per_server_request": round(r.seconds / r.server_requests, 2) if r.server_requests else None,
        # our own CPU per answer (client process, all threads): the plumbing's cost, immune to server load
        "judge_client_cpu_ms_per_answer": round(1000 * j.client_cpu_s / j.answers, 1) if j.answers else None,
        "baseline_raw_client_cpu_ms_per_answer": round(1000 * r.client_cpu_s / r.answers, 1) if r.answers else None,
        "judge_answer_latency_s_median": round(statistics.median(j.latencies), 2) if j.latencies else None,
        "baseline_raw_answer_latency_s_median": round(statistics.median(r.latencies), 2) if r.latencies else None,
        "judge_server_cpu_ms_per_completion_token": j.cpu_ms_per_token(),
        "baseline_raw_server_cpu_ms_per_completion_token": r.cpu_ms_per_token(),
        # the load on a shared machine drifts: per-chunk figures show how much (order: see "order")
        "ratio_judge_to_raw_per_chunk": [
            round(a / b, 3) if b else None for a, b in zip(j.chunk_answers_per_s, r.chunk_answers_per_s, strict=True)
        ],
        "judge_chunk_completion_tokens_per_s": j.chunk_tokens_per_s,
        "baseline_raw_chunk_completion_tokens_per_s": r.chunk_tokens_per_s,
        "load_average_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "cpu_count": os.cpu_count(),
    }
