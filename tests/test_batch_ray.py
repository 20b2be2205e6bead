"""`grader batch --engine ray` on a real two-node Ray cluster started here (head + a second node, one CPU each).

The driver runs as a user runs it (`python -m grader batch ... --engine ray` with RAY_ADDRESS), so killing it
with SIGKILL is a real kill. Every test checks the contract of the local engine: each input row exactly once,
and each score the local engine's."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.pipeline.batch import BatchOptions, run_batch
from grader.pipeline.grader import Grader
from grader.pipeline.synthetic import write_answers
from grader.rubric.store import load_rubrics
from tests.servers.counting_proxy import CountingProxy
from tests.servers.ray_cluster import RayCluster, wait_for

pytestmark = pytest.mark.slow

N = 900
CHUNK = 100  # rows per batch sent to a worker (and the local engine's window: the same encoder batches)
WORKER_LINE = re.compile(r"ray worker pid (\d+) on node (\w+)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with RayCluster() as c:
        yield c


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory, seed_rubrics_dir: Path) -> Path:
    src = tmp_path_factory.mktemp("ray") / "answers.jsonl"
    write_answers(load_rubrics(seed_rubrics_dir), src, N, seed=15)
    # Bad rows get their error records from the Ray engine too.
    with src.open("a") as f:
        f.write(json.dumps({"id": "bad-q", "question_id": "no-such-question", "answer": "x"}) + "\n")
        f.write(json.dumps({"id": "empty", "question_id": "easy-2", "answer": "  "}) + "\n")
        f.write("{not json\n")
    return src


@pytest.fixture(scope="module")
def local_records(tmp_path_factory: pytest.TempPathFactory, answers: Path,
                  offline_grader: Grader) -> dict[int, dict]:
    out = tmp_path_factory.mktemp("ray-local") / "local.jsonl"
    run_batch(offline_grader, BatchOptions(answers, out, chunk_size=CHUNK))
    return {r["line"]: r for r in _records(out)}


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_bytes().split(b"\n") if x]


def _cmd(src: Path, out: Path, rubrics: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grader", "batch", str(src), "-o", str(out), "--judge", "none",
            "--rubrics", str(rubrics), "--no-progress", "--engine", "ray", "--workers", "2",
            "--chunk-size", str(CHUNK), *extra]


def _start(cluster: RayCluster, cmd: list[str], log: Path, **env_vars: str) -> subprocess.Popen[bytes]:
    env = {**cluster.env, "RAY_ADDRESS": cluster.address, **env_vars}
    with log.open("wb") as f:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)


def _count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _workers(log: Path) -> list[tuple[int, str]]:
    return [(int(p), n) for p, n in WORKER_LINE.findall(log.read_text(errors="replace"))]


def _assert_same_as_local(records: list[dict], local: dict[int, dict], abs_tol: float = 1e-6) -> None:
    assert sorted(r["line"] for r in records) == sorted(local), "each input row exactly once"
    for r in records:
        ref = local[r["line"]]
        assert (r["id"], r["status"], r["error"]) == (ref["id"], ref["status"], ref["error"])
        if ref["score"] is None:
            assert r["score"] is None
        else:
            assert r["score"] == pytest.approx(ref["score"], abs=abs_tol)


def test_one_file_graded_across_both_nodes_equals_local(cluster: RayCluster, answers: Path, seed_rubrics_dir: Path,
                                                        local_records: dict[int, dict], tmp_path: Path) -> None:
    out, log, summ = tmp_path / "out.jsonl", tmp_path / "err.log", tmp_path / "summary.json"
    proc = _start(cluster, _cmd(answers, out, seed_rubrics_dir, "--summary-json", str(summ)), log)
    assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    workers = _workers(log)
    assert len({node for _, node in workers}) == 2, f"both nodes graded: {workers}"
    records = _records(out)
    _assert_same_as_local(records, local_records)
    assert [r["line"] for r in records] == sorted(r["line"] for r in records), "input order once finished"
    assert sum(r["status"] == "error" for r in records) == 3
    s = json.loads(summ.read_text())
    assert s["engine"] == "ray" and s["rows"] == N + 3 and s["errors"] == 3
    assert {w["pid"] for w in s["ray"]["workers"]} == {p for p, _ in workers}


def test_worker_killed_mid_run_every_row_once(cluster: RayCluster, answers: Path, seed_rubrics_dir: Path,
                                              local_records: dict[int, dict], tmp_path: Path) -> None:
    out, log, summ = tmp_path / "out.jsonl", tmp_path / "err.log", tmp_path / "summary.json"
    proc = _start(cluster, _cmd(answers, out, seed_rubrics_dir, "--summary-json", str(summ)), log)
    try:
        wait_for(lambda: len(_workers(log)) >= 2 or proc.poll() is not None, 300, "the workers")
        wait_for(lambda: _count(out) >= CHUNK or proc.poll() is not None, 600, "the first records")
        assert proc.poll() is None, "the run ended before the kill"
        victim = _workers(log)[0][0]
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    s = json.loads(summ.read_text())
    assert s["ray"]["restarts"] >= 1, "the killed worker was replaced"
    assert victim not in {w["pid"] for w in s["ray"]["workers"]}
    # A resent batch is the same batch: encoded together again, the same scores to the last bit.
    _assert_same_as_local(_records(out), local_records)


def test_driver_sigkill_then_resume_completes_the_file(cluster: RayCluster, answers: Path, seed_rubrics_dir: Path,
                                                       local_records: dict[int, dict], tmp_path: Path) -> None:
    out, log = tmp_path / "out.jsonl", tmp_path / "err.log"
    proc = _start(cluster, _cmd(answers, out, seed_rubrics_dir), log)
    try:
        wait_for(lambda: _count(out) >= CHUNK or proc.poll() is not None, 600, "the first records")
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = _count(out)
    assert 0 < killed_at < N + 3
    done = _start(cluster, _cmd(answers, out, seed_rubrics_dir, "--resume"), log)
    assert done.wait(timeout=900) == 0, log.read_text()[-3000:]
    # After a resume the remaining rows fall into other windows than in one uninterrupted run: float noise
    # of ~1e-7 can then flip the 4th decimal of a rounded score (as with the local engine's resume).
    _assert_same_as_local(_records(out), local_records, abs_tol=1.0001e-4)


def test_judged_run_keeps_cluster_wide_concurrency_at_the_server(cluster: RayCluster, local_llm,  # type: ignore[no-untyped-def]
                                                                 seed_rubrics_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    # Two batches of two, one per worker: four judge calls wanted at once, two allowed.
    write_answers(load_rubrics(seed_rubrics_dir), src, 4, seed=3)
    out, log, summ = tmp_path / "out.jsonl", tmp_path / "err.log", tmp_path / "summary.json"
    with CountingProxy(local_llm.base_url.removesuffix("/v1")) as proxy:
        cmd = [sys.executable, "-m", "grader", "batch", str(src), "-o", str(out), "--rubrics", str(seed_rubrics_dir),
               "--no-progress", "--engine", "ray", "--workers", "2", "--chunk-size", "2", "--judge", "openai",
               "--base-url", proxy.base_url, "--model", local_llm.model, "--concurrency", "2", "--no-cache",
               "--summary-json", str(summ)]
        # Short replies, no retries: a 135M model on two busy cores takes long enough per call as it is.
        proc = _start(cluster, cmd, log, GRADER_JUDGE__MAX_RETRIES="0", GRADER_JUDGE__MAX_TOKENS="160")
        assert proc.wait(timeout=1200) == 0, log.read_text()[-3000:]
    records = _records(out)
    assert sorted(r["line"] for r in records) == list(range(1, 5))
    assert all(r["judge_used"] == "openai" for r in records), records
    assert proxy.served >= 4, "every answer went to the server"
    assert proxy.max_in_flight <= 2, f"{proxy.max_in_flight} requests at once at the server"
    # Both workers had answers queued at once: a per-worker limit would have let 4 through.
    assert len({n for _, n in _workers(log)}) == 2
    s = json.loads(summ.read_text())
    assert s["ray"]["judge_peak_in_flight"] == 2, "the limit was reached (workers contended for the slots)"


def test_without_ray_says_how_to_install_it(tmp_path: Path, seed_rubrics_dir: Path, answers: Path) -> None:
    # A `ray` package that fails to import, first on the path: what a base install without the extra meets.
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(Path(__file__).parents[1])])}
    out = tmp_path / "out.jsonl"
    p = subprocess.run(_cmd(answers, out, seed_rubrics_dir), env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "pip install 'grader[ray]'" in p.stderr
    assert not out.exists(), "nothing written, OUTPUT not even created"
