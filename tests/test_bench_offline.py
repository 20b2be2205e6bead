"""The offline and latency benchmarks run end to end on the real model and report every runtime beside the
raw library; the figures themselves are measured by the commands, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.bench.offline import batch_run, raw_encode_throughput, scorer_throughput
from grader.config import Settings


def test_scorer_throughput_reports_each_runtime_beside_the_raw_encoder(encoder) -> None:  # type: ignore[no-untyped-def]
    r = scorer_throughput(n=64, repeats=1, runtimes=("onnx", "torch"))
    assert r["n"] == 64 and r["raw_encode_per_s"] > 0
    assert set(r["runtimes"]) == {"onnx", "torch"}
    for m in r["runtimes"].values():
        # the rates are printed rounded to 0.1 answers/s: the ratio is of the unrounded ones
        assert m["graded_per_s"] > 0 and m["ratio"] == pytest.approx(m["graded_per_s"] / r["raw_encode_per_s"], rel=0.1)
        assert m["cpu_seconds"] > 0 and m["cpu_ratio"] > 0


@pytest.mark.slow
def test_batch_run_grades_the_file_on_the_runtime_it_is_given(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    from grader.bench.make_answers import answers_file

    src = answers_file(24, seed_rubrics_dir, tmp_path / "answers.jsonl")
    assert len(src.read_text().splitlines()) == 24
    run = batch_run(src, "onnx", seed_rubrics_dir)
    assert run["summary"]["rows"] == 24 and run["summary"]["errors"] == 0
    assert run["peak_rss_mb"] > 50
    raw = raw_encode_throughput(src, Settings(), limit=10)
    assert raw["n"] == 10 and raw["per_s"] > 0 and raw["encoder"].startswith("sentence_transformers")


def test_make_answers_refuses_to_overwrite(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    from grader.bench.make_answers import write
    from grader.errors import InputError

    out = tmp_path / "a.jsonl"
    write(seed_rubrics_dir, out, 5)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(r["answer"] for r in rows)
    with pytest.raises(InputError, match="exists"):
        write(seed_rubrics_dir, out, 5)
    write(seed_rubrics_dir, out, 3, force=True)
    assert len(out.read_text().splitlines()) == 3
