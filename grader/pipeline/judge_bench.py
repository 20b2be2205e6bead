"""Judge throughput through our Judge vs the same requests posted raw to the same local server.

The raw baseline sends, for each answer, exactly the request body the judge's first attempt sends
(same messages, same response_format for the negotiated mode, same max_tokens), with the same
concurrency, and reads nothing back. The ratio therefore prices our overhead: rendering, parsing,
validation, retries of unparseable replies and mode negotiation.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from grader.config import Settings


def _load(answers: Path, n: int, grader: Any) -> list[tuple[Any, str]]:
    items: list[tuple[Any, str]] = []
    with answers.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            items.append((grader.rubric(row["question_id"]), row["answer"]))
            if len(items) >= n:
                break
    return items


async def _judge_all(judge: Any, items: list[tuple[Any, str]]) -> list[Any]:
    return list(await asyncio.gather(*(judge.ajudge(r, a) for r, a in items)))


async def _raw_all(base_url: str, bodies: list[dict[str, Any]], concurrency: int, timeout: float) -> dict[str, int]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    totals = {"ok": 0, "failed": 0, "completion_tokens": 0}
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:

        async def one(body: dict[str, Any]) -> None:
            try:
                async with sem:
                    r = await client.post("/chat/completions", json=body)
            except httpx.HTTPError:
                totals["failed"] += 1
                return
            if r.status_code == 200:
                totals["ok"] += 1
                totals["completion_tokens"] += int((r.json().get("usage") or {}).get("completion_tokens") or 0)
            else:
                totals["failed"] += 1

        await asyncio.gather(*(one(b) for b in bodies))
    return totals


def run_judge_bench(n: int, concurrency: int, answers: Path, base: Settings, max_tokens: int = 512) -> dict[str, Any]:
    from grader.judge import make_judge
    from grader.judge.judge import TOOL_NAME
    from grader.judge.local_server import LocalServer
    from grader.judge.openai_backend import request_kwargs
    from grader.judge.render import build_messages
    from grader.judge.schema import verdict_schema
    from grader.judge.structured import CallParams
    from grader.pipeline.grader import Grader

    with LocalServer() as srv:
        settings = base.model_copy(deep=True)
        js = settings.judge
        js.backend, js.base_url, js.model = "openai", srv.base_url, srv.model
        js.cache, js.concurrency, js.api_key, js.max_tokens = False, concurrency, None, max_tokens
        # Same patience on both paths: the server queues what it cannot run in parallel.
        js.timeout = max(js.timeout, 900.0)
        grader = Grader(settings)
        items = _load(answers, n, grader)
        judge = make_judge(settings)
        assert judge is not None
        judge.judge(*items[0])  # warm-up: mode negotiation and the server's first-call costs

        judge.requests = 0
        t0 = time.perf_counter()
        results = asyncio.run(_judge_all(judge, items))
        judge_s = time.perf_counter() - t0
        modes = sorted({r.mode for r in results if r.mode})
        mode = modes[0] if modes else "text"
        params = CallParams(temperature=js.temperature, max_tokens=js.max_tokens)
        bodies = [
            request_kwargs(srv.model or "", build_messages(judge.prompt, r, a), mode, verdict_schema(r),
                           TOOL_NAME, params)
            for r, a in items
        ]
        t0 = time.perf_counter()
        raw = asyncio.run(_raw_all(srv.base_url, bodies, concurrency, js.timeout))
        raw_s = time.perf_counter() - t0

    scored = sum(1 for r in results if r.status == "scored")
    judge_tokens = sum(r.usage.completion_tokens for r in results)
    return {
        "benchmark": "judge",
        "answers": len(items),
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "model": srv.model,
        "mode": mode,
        "judge_answers_per_s": round(len(items) / judge_s, 3),
        "judge_scored": scored,
        "judge_unscored": len(items) - scored,
        "judge_requests": judge.requests,
        "judge_completion_tokens_per_s": round(judge_tokens / judge_s, 1),
        "baseline_raw_requests_per_s": round(len(bodies) / raw_s, 3),
        "baseline_raw_failed": raw["failed"],
        "baseline_raw_completion_tokens_per_s": round(raw["completion_tokens"] / raw_s, 1),
        "ratio_judge_to_raw": round((len(items) / judge_s) / (len(bodies) / raw_s), 3),
        "note": "a 135M model exercises the plumbing only; its verdicts are not grades",
    }
