"""Offline throughput: answers graded per second on each embedding runtime vs raw SentenceTransformer.encode.

    grader bench offline --n 4000      whole `grader batch --judge none` runs in subprocesses, one per
                                       runtime, on synthetic answers; peak RSS; the raw encoder before
                                       and after them, on the same answers
    python -m grader.bench.offline     in-process: OfflineScorer.score_many on Mohler's answers, best of
                                       --repeats, interleaved with the raw encoder

The baseline is the library itself (SentenceTransformer.encode, normalised, same batch size), whatever
runtime grading uses: the target is stated against it, not against our own copies of the model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.config import Settings

RUNTIMES = ("onnx-int8", "onnx", "torch")
TARGET_RATIO = 2.0
RSS_LIMIT_MB = 1024


def bench_env(runtime: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"})
    if runtime is not None:
        env["GRADER_EMBEDDING__RUNTIME"] = runtime
    return env


def run_measured(cmd: list[str], env: dict[str, str] | None = None, poll_s: float = 0.05) -> tuple[float, float, int, str]:
    """Run cmd; return (wall seconds, peak RSS MB of it and its children, exit code, stderr tail)."""
    import psutil

    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err_file:
        # stderr to a file, not a pipe: a chatty child must never block on a full pipe while we poll.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, env=env or bench_env())
        peak = 0
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(poll_s)
        wall = time.perf_counter() - t0
        err_file.seek(0)
        err = err_file.read().decode("utf-8", "replace")
    return wall, peak / 2**20, proc.returncode, err[-2000:]


def prepare(runtimes: list[str] | tuple[str, ...], settings: Settings | None = None) -> None:
    """Convert the model for each ONNX runtime now, so no timed run pays for a first conversion."""
    from grader.embedding.encoder import get_encoder

    base = settings or Settings()
    for rt in runtimes:
        if rt.startswith("onnx"):
            es = base.embedding.model_copy(update={"runtime": rt})
            get_encoder(es)


def read_answer_texts(answers: Path, limit: int | None = None) -> list[str]:
    texts: list[str] = []
    with answers.open(encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["answer"])
            if limit and len(texts) >= limit:
                break
    return texts


def raw_encode_throughput(answers: Path, settings: Any, limit: int | None = None) -> dict[str, Any]:
    """Answers/s of the bare library, SentenceTransformer.encode, on the answer texts of the file."""
    from sentence_transformers import SentenceTransformer

    from grader.embedding.encoder import bundled_model_path

    texts = read_answer_texts(answers, limit)
    es = settings.embedding
    model = SentenceTransformer(es.model or str(bundled_model_path()), device=es.device)
    bs = es.batch_size

    def encode(batch: list[str]) -> None:
        model.encode(batch, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)

    encode(texts[:64])  # warm-up: first-call allocation is not throughput
    t0, c0 = time.perf_counter(), time.process_time()
    encode(texts)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"per_s": len(texts) / dt if dt else 0.0, "cpu_s_per_answer": cpu / len(texts), "n": len(texts),
            "batch_size": bs, "encoder": "sentence_transformers.SentenceTransformer.encode"}


def raw_encode_subprocess(answers: Path, limit: int | None = None) -> dict[str, Any]:
    """raw_encode_throughput in a fresh process (the same start-up state as the batches it is compared with)."""
    code = (
        "import json, resource, sys; from pathlib import Path; from grader.config import load_settings; "
        "from grader.bench.offline import raw_encode_throughput as f; "
        "r = f(Path(sys.argv[1]), load_settings(), int(sys.argv[2]) or None); "
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))"
    )
    p = subprocess.run([sys.executable, "-c", code, str(answers), str(limit or 0)], capture_output=True,
                       text=True, env=bench_env())
    if p.returncode != 0:
        raise RuntimeError(f"raw encoder baseline failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def batch_run(answers: Path, runtime: str, rubrics_dir: Path | None = None,
              extra: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """`grader batch --judge none` on the file in a subprocess on one runtime: its summary, wall, peak RSS
    (of the process and its children). `extra`: more options for `grader batch` (e.g. another engine)."""
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        out, summ = Path(tmp) / "out.jsonl", Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "grader", "batch", str(answers), "-o", str(out), "--judge", "none",
               "--no-progress", "--summary-json", str(summ)]
        if rubrics_dir is not None:
            cmd += ["--rubrics", str(rubrics_dir)]
        cmd += list(extra)
        wall, peak_mb, rc, err = run_measured(cmd, bench_env(runtime))
        if rc != 0:
            raise RuntimeError(f"grader batch on runtime {runtime} failed (exit {rc}): {err}")
        summary = json.loads(summ.read_text())
    return {"summary": summary, "wall_s": wall, "peak_rss_mb": peak_mb, "stderr": err}


def batch_throughput(answers: Path, runtimes: list[str] | tuple[str, ...] = RUNTIMES,
                     rubrics_dir: Path | None = None, raw_limit: int | None = None) -> dict[str, Any]:
    """Each runtime's whole batch vs the raw encoder on the same answers, run before and after them all."""
    from grader.embedding.runtime import resolve

    prepare(runtimes)
    load_before = os.getloadavg()[0]
    # The baseline runs in fresh processes like the batches, before and after them: on a shared machine the
    # load drifts, and bracketing the batches makes that drift visible instead of hidden.
    raws = [raw_encode_subprocess(answers, raw_limit)]
    runs = {rt: batch_run(answers, rt, rubrics_dir) for rt in runtimes}
    raws.append(raw_encode_subprocess(answers, raw_limit))
    raw_rate = statistics.mean(r["per_s"] for r in raws)
    raw_cpu = statistics.mean(r["cpu_s_per_answer"] for r in raws)
    per_runtime: dict[str, Any] = {}
    for rt, run in runs.items():
        s = run["summary"]
        rate, cpu = s["rows_per_s"], (s["cpu_s"] / s["rows"] if s["rows"] else 0.0)
        per_runtime[rt] = {
            "answers_per_s": rate,
            "ratio_to_raw_encoder": round(rate / raw_rate, 3) if raw_rate else None,
            # CPU seconds per answer, each process its own: other load on the machine slows the wall clock
            # of whichever side it hits, but barely changes the CPU each side spends.
            "cpu_ms_per_answer": round(cpu * 1000, 2),
            "cpu_ratio_to_raw_encoder": round(raw_cpu / cpu, 3) if cpu else None,
            "peak_rss_mb": round(run["peak_rss_mb"], 1),
            "wall_s_including_startup": round(run["wall_s"], 2),
            "grading_s": s["elapsed_s"],
            "answers": s["rows"],
            "errors": s["errors"],
            "mean_score": s["mean_score"],
        }
    return {
        "benchmark": "offline",
        "answers": per_runtime[runtimes[0]]["answers"] if runtimes else 0,
        "default_runtime": resolve("auto"),
        "runtimes": per_runtime,
        "baseline_raw_encode_per_s": round(raw_rate, 2),
        "baseline_raw_encode_per_s_before_after": [round(r["per_s"], 2) for r in raws],
        "baseline_raw_encode_cpu_ms_per_answer": round(raw_cpu * 1000, 2),
        "baseline_rows": raws[0]["n"],
        "baseline_peak_rss_mb": round(max(r["peak_rss_mb"] for r in raws), 1),
        "target_ratio": TARGET_RATIO,
        "rss_limit_mb": RSS_LIMIT_MB,
        "encoder_batch_size": raws[0]["batch_size"],
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }


# -- in-process: the scorer alone on Mohler's answers ----------------------------------------------------


def _mohler_pairs(n: int) -> list[tuple[Any, str]]:
    from grader.embedding.crossval import read_graded_jsonl, rubrics_for
    from grader.paths import mohler_dev

    data = read_graded_jsonl(mohler_dev())
    rubrics = rubrics_for([q for q, *_ in data])
    pairs = [(rubrics[q.id], a) for q, a, _, _ in data]
    return [pairs[i % len(pairs)] for i in range(n)]


def scorer_throughput(n: int = 2000, repeats: int = 3, runtimes: list[str] | tuple[str, ...] = RUNTIMES,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Best-of-``repeats`` answers/s of OfflineScorer.score_many per runtime and of the raw encoder."""
    from sentence_transformers import SentenceTransformer

    from grader.embedding.encoder import bundled_model_path
    from grader.embedding.scorer import OfflineScorer

    base = settings or Settings()
    pairs = _mohler_pairs(n)
    texts = [a.strip() for _, a in pairs]
    model = SentenceTransformer(base.embedding.model or str(bundled_model_path()), device="cpu")
    bs = base.embedding.batch_size
    scorers = {}
    for rt in runtimes:
        s = base.model_copy(deep=True)
        s.embedding.runtime = rt  # type: ignore[assignment]
        scorers[rt] = OfflineScorer(s)
        # Warm-up: every rubric's cached encodings, the session's first batches.
        scorers[rt].score_many(list({id(r): (r, a) for r, a in pairs}.values()))
    model.encode(texts[:bs], batch_size=bs, show_progress_bar=False)
    wall: dict[str, list[float]] = {k: [] for k in ("raw", *runtimes)}
    cpu: dict[str, list[float]] = {k: [] for k in ("raw", *runtimes)}
    for _ in range(repeats):
        # Interleaved, best of each: on a shared machine the quietest run is the closest to the truth.
        t, c = time.perf_counter(), time.process_time()
        model.encode(texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
        wall["raw"].append(time.perf_counter() - t)
        cpu["raw"].append(time.process_time() - c)
        for rt, scorer in scorers.items():
            t, c = time.perf_counter(), time.process_time()
            scorer.score_many(pairs)
            wall[rt].append(time.perf_counter() - t)
            cpu[rt].append(time.process_time() - c)
    raw_rate = n / min(wall["raw"])
    return {
        "n": n,
        "repeats": repeats,
        "batch_size": bs,
        "raw_encode_per_s": round(raw_rate, 1),
        "raw_cpu_seconds": round(min(cpu["raw"]), 2),
        "runtimes": {
            rt: {
                "graded_per_s": round(n / min(wall[rt]), 1),
                "ratio": round(n / min(wall[rt]) / raw_rate, 3),
                "cpu_seconds": round(min(cpu[rt]), 2),
                "cpu_ratio": round(min(cpu["raw"]) / min(cpu[rt]), 3),
            }
            for rt in runtimes
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.bench.offline", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runtime", action="append", dest="runtimes", help="runtime to measure (repeatable)")
    args = ap.parse_args(argv)
    r = scorer_throughput(args.n, args.repeats, args.runtimes or RUNTIMES)
    print(f"answers: {r['n']} Mohler answers (batch size {r['batch_size']}, best of {r['repeats']}, "
          f"load average {os.getloadavg()[0]:.2f})")
    print(f"  raw SentenceTransformer.encode   {r['raw_encode_per_s']:8.1f} answers/s (CPU {r['raw_cpu_seconds']} s)")
    for rt, m in r["runtimes"].items():
        print(f"  OfflineScorer, runtime {rt:10s}{m['graded_per_s']:8.1f} answers/s (CPU {m['cpu_seconds']} s)  "
              f"ratio {m['ratio']:.3f}, CPU ratio {m['cpu_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
