"""The judge benchmark's accounting, against the fault server: retries are counted and priced, not hidden.

The throughput figures themselves come from `grader bench judge` on the real llama.cpp server; here the
server is scripted so every count in the report is known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

from servers.fault_server import FaultServer

from grader.bench.judge import run_judge_bench
from grader.config import JudgeSettings, Settings

MARK = "GREEDY-GARBAGE"


def answers_file(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "answers.jsonl"
    rows = [{"id": f"a{i}", "question_id": "interview/easy-1", "answer": t} for i, t in enumerate(texts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", judge=JudgeSettings(max_retries=2))


def test_retries_of_unparseable_replies_are_counted_and_priced(tmp_path: Path) -> None:
    texts = ["First answer.", f"Second answer {MARK}.", "Third answer.", "Fourth answer.", "Warm-up answer."]
    with FaultServer(greedy_garbage=MARK) as server:
        report = run_judge_bench(4, 2, answers_file(tmp_path, texts), settings(tmp_path), 256,
                                 endpoint=server)
        bodies = [b for b in server.requests if b["max_tokens"] != 1]  # not the untimed prefix resets
        resets = len(server.requests) - len(bodies)
    assert resets == 4  # one before each chunk of each path    # Warm-up (answer five): json_schema refused, json_object accepted -- before the timings.
    assert report["negotiation_requests_before_timing"] == 2 and report["mode"] == "json_object"
    assert report["order"] == ["judge", "raw", "raw", "judge"]
    # The marked answer: garbage at temperature 0, then a warmer retry parses. The raw path sends the
    # same greedy body once and gets the same garbage.
    assert report["judge_server_requests"] == 5 and report["baseline_raw_server_requests"] == 4
    assert report["judge_attempts_counted_by_judge"] == 5
    assert report["judge_requests_per_answer"] == 1.25 and report["baseline_raw_requests_per_answer"] == 1.0
    assert report["judge_rejected_replies"] == 1 and report["judge_answers_retried"] == 1
    assert report["judge_scored"] == 4 and report["baseline_raw_unparseable"] == 1
    # The fault server charges 20 completion tokens a reply: 5 judge replies, one of them rejected.
    assert report["judge_completion_tokens"] == 100 and report["baseline_raw_completion_tokens"] == 80
    assert report["judge_rejected_completion_tokens"] == 20
    assert report["judge_share_of_tokens_spent_on_rejected_replies"] == 0.2
    assert report["first_try_answers_with_same_reply_length_on_both_paths"] == "3/3"
    assert report["judge_server_cpu_ms_per_completion_token"] is None  # not measurable in-process
    # Both paths sent greedy bodies; only the judge's retry was warmer.
    marked = [b for b in bodies if MARK in b["messages"][-1]["content"]]
    assert sorted(b["temperature"] for b in marked) == [0.0, 0.0, 0.7]
    assert all(b["max_tokens"] == 256 for b in bodies)
    for key in ("judge_answers_per_s", "baseline_raw_answers_per_s", "ratio_judge_to_raw",
                "judge_completion_tokens_per_s", "baseline_raw_completion_tokens_per_s",
                "ratio_judge_to_raw_tokens_per_s"):
        assert report[key] > 0, key
    assert len(report["judge_chunk_completion_tokens_per_s"]) == 2
    assert report["judge_client_cpu_ms_per_answer"] > 0 and report["baseline_raw_client_cpu_ms_per_answer"] > 0


def test_raw_bodies_are_the_judges_first_attempt(tmp_path: Path) -> None:
    texts = ["One.", "Two.", "Warm-up."]
    with FaultServer() as server:
        report = run_judge_bench(2, 1, answers_file(tmp_path, texts), settings(tmp_path), 128, endpoint=server)
        measured = server.requests[2:]  # after the warm-up's refusal and reply
    assert report["order"] == ["judge", "raw", "raw", "judge"]  # chunks of one answer, alternating
    # Each chunk opens with a one-token reset on an unrelated prompt, then the answer's request.
    assert [b["max_tokens"] for b in measured] == [1, 128] * 4
    judge_one, raw_one, raw_two, judge_two = measured[1::2]
    assert judge_one == raw_one and judge_two == raw_two
    assert "One." in judge_one["messages"][-1]["content"] and "Two." in judge_two["messages"][-1]["content"]
