"""kill -9 `grader batch` at 20 random moments of one 3,000-row run, --resume each time: every row exactly once,
and the scores of an uninterrupted run.

Affordable because the kills fall across a sequence of resumes of ONE run: in all, about one pass over the
file plus 20 restarts. Each restart also proves a SIGKILLed run leaves no lock behind (flock dies with it)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.grader import Grader
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics

N = 3000
KILLS = 20
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _cmd(src: Path, out: Path, rubrics: Path) -> list[str]:
    return [sys.executable, "-m", "grader", "batch", str(src), "-o", str(out), "--judge", "none",
            "--rubrics", str(rubrics), "--no-progress", "--resume"]


def _count(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_sigkill_at_twenty_random_moments_then_resume(tmp_path: Path, seed_rubrics_dir: Path,
                                                      offline_grader: Grader) -> None:
    rng = random.Random(20261130)
    src = write_answers(load_rubrics(seed_rubrics_dir), tmp_path / "answers.jsonl", N, seed=7)
    out = tmp_path / "out.jsonl"
    # Most kills land while records are being written (past a random row count, plus a random few
    # milliseconds, so some land mid-write); a few land at a random time of start-up, before any record.
    targets = iter(sorted(rng.sample(range(1, N), KILLS - 4)))
    plan = ["count"] * (KILLS - 4) + ["startup"] * 4
    rng.shuffle(plan)
    kills = []
    for how in plan:
        proc = subprocess.Popen(_cmd(src, out, seed_rubrics_dir), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        if how == "startup":
            time.sleep(rng.uniform(0.05, 1.5))
        else:
            target = next(targets)
            while _count(out) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert proc.returncode == -signal.SIGKILL, f"the run ended before its kill: {err}"
        kills.append(_count(out))
    # (A kill just after the last record still counts as a kill: the run had not finished.)
    assert sum(k < N for k in kills) >= KILLS - 2, f"the kills came too late to interrupt the run: {kills}"

    done = subprocess.run(_cmd(src, out, seed_rubrics_dir), env=ENV, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(x) for x in out.read_bytes().split(b"\n") if x]
    assert sorted(r["line"] for r in records) == list(range(1, N + 1)), "each input row exactly once"

    reference = tmp_path / "reference.jsonl"
    run_batch(offline_grader, BatchOptions(src, reference))
    ref = {r["line"]: r for r in (json.loads(x) for x in reference.read_bytes().split(b"\n") if x)}
    for r in records:
        assert r["id"] == ref[r["line"]]["id"]
        # Scores are rounded to 4 decimals; a different batch composition moves float noise ~1e-7, which
        # flips the 4th decimal only at a rounding boundary.
        assert r["score"] == pytest.approx(ref[r["line"]]["score"], abs=1.0001e-4)
