"""Batch and Grader with a judge over real HTTP: our fault-injecting server, and the real llama.cpp server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.fault_server import FaultServer

from grader.config import load_settings
from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.grader import Grader

ANSWER = "Pruning removes the least important weights, so the model is smaller and inference is faster."


def _grader(base_url: str, rubrics: Path, offline: Grader, **judge: object) -> Grader:
    js = {"backend": "openai", "base_url": base_url, "model": "fault-model", "max_retries": 0, "timeout": 5,
          "cache": False, **judge}
    g = Grader(load_settings({"judge": js}, environ={}), rubrics)
    g._scorer = offline.scorer  # share the session's loaded model
    return g


def _answers(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "in.jsonl"
    qids = ["easy-2", "easy-3", "easy-1"]
    src.write_text("".join(json.dumps({"id": f"r{i}", "question_id": qids[i % 3], "answer": f"{ANSWER} ({i})"}) + "\n"
                           for i in range(n)))
    return src


def test_judged_grade_mixes_scores_and_verdicts(seed_rubrics_dir: Path, offline_grader: Grader) -> None:
    with FaultServer(score=4) as server:
        g = _grader(server.base_url, seed_rubrics_dir, offline_grader)
        res = g.grade(ANSWER, question_id="easy-2")
    assert res.status == "graded" and res.judge_used == "openai"
    assert res.judge is not None and res.judge.score == 4 and res.embedding is not None
    # Judge-led: 4 moved by 0.3 x (embedding - 4), at most band 0.1 x open 1 (all points partial) x 5 points.
    expected = round(4 + min(max(0.3 * (res.embedding.score - 4), -0.5), 0.5), 4)
    assert res.score == pytest.approx(expected, abs=1e-4)
    assert res.combination["judge"] == 0.7 and res.combination["judge_score"] == 4
    # The server says "partial" for every point: verdicts decide the per-point credit.
    assert {c.status for c in res.criteria} == {"partial"} and {c.credit for c in res.criteria} == {0.5}
    assert all(c.coverage is not None for c in res.criteria)


def test_judged_batch_bounded_concurrency(tmp_path: Path, seed_rubrics_dir: Path, offline_grader: Grader) -> None:
    src, out = _answers(tmp_path, 12), tmp_path / "out.jsonl"
    with FaultServer(default="slow", slow=0.3) as server:
        g = _grader(server.base_url, seed_rubrics_dir, offline_grader, concurrency=3)
        s = run_batch(g, BatchOptions(src, out, full=True, chunk_size=5))
        peak = server.max_in_flight
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["line"] for r in recs) == list(range(1, 13))
    assert {r["status"] for r in recs} == {"graded"} and {r["judge_used"] for r in recs} == {"openai"}
    assert 1 < peak <= 3
    assert s.graded == 12 and s.prompt_tokens > 0 and s.completion_tokens > 0
    for r in recs:
        comb = r["result"]["combination"]
        # The judge leads: its score moved by the weighted embedding difference, within band * open * max.
        limit = comb["band"] * comb["open"] * r["max_score"]
        shift = min(max(comb["embedding"] * (comb["embedding_score"] - comb["judge_score"]), -limit), limit)
        assert r["score"] == pytest.approx(comb["judge_score"] + shift, abs=2e-4)


def test_judge_failures_fall_back_or_stay_unscored(tmp_path: Path, seed_rubrics_dir: Path,
                                                    offline_grader: Grader) -> None:
    src = _answers(tmp_path, 4)
    with FaultServer(default="500") as server:
        g = _grader(server.base_url, seed_rubrics_dir, offline_grader)
        s = run_batch(g, BatchOptions(src, tmp_path / "fb.jsonl"))
        g2 = _grader(server.base_url, seed_rubrics_dir, offline_grader, fallback=False)
        s2 = run_batch(g2, BatchOptions(src, tmp_path / "nofb.jsonl"))
    fb = [json.loads(x) for x in (tmp_path / "fb.jsonl").read_text().splitlines()]
    assert s.fallback == 4 and {r["status"] for r in fb} == {"fallback"}
    assert all(r["score"] is not None and r["warnings"][0].startswith("judge unavailable:") for r in fb)
    nofb = [json.loads(x) for x in (tmp_path / "nofb.jsonl").read_text().splitlines()]
    assert s2.unscored == 4 and {r["score"] for r in nofb} == {None} and {r["status"] for r in nofb} == {"unscored"}


@pytest.mark.llm
def test_grade_through_local_llama_server(local_llm, seed_rubrics_dir: Path, offline_grader: Grader) -> None:  # type: ignore[no-untyped-def]
    from grader.cli.grade import judge_line

    g = _grader(local_llm.base_url, seed_rubrics_dir, offline_grader, model=local_llm.model, max_retries=1,
                timeout=120)
    res = g.grade(ANSWER, question_id="easy-2")
    assert res.judge is not None and res.judge_used == "openai" and res.judge.model
    line = judge_line(res, g)
    assert line.startswith(f"judge: openai model {res.judge.model}")
    if res.judge.status == "scored":
        # A 135M model may not produce a valid verdict; when it does, the grade mixes both parts.
        assert res.status == "graded" and res.combination["judge"] == 0.7 and f"(mode {res.judge.mode})" in line
    else:
        assert res.status == "fallback" and res.warnings[0].startswith("judge unavailable:")
