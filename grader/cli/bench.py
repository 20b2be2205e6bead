"""`grader bench ...`: measured figures, printed as JSON, each next to its baseline from the same run.

- make-answers: a synthetic answer file from the rubrics (input for the other benchmarks).
- offline: `grader batch --judge none` on N answers in a subprocess (peak RSS, answers/s) vs the raw
  encoder's throughput on the same texts.
- latency: cold-start `grader grade --judge none` wall time vs `python -c "import torch"`.
- judge: answers through the Judge (with concurrency) vs the same prompts posted raw to the local server.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from grader.cli.common import RubricsOpt, build_settings

DEFAULT_ANSWER = (
    "Pruning removes the least important weights from a neural network, which makes the model smaller "
    "and faster at inference with little loss of accuracy."
)


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2))


def _rubrics(rubrics_dir: Path | None) -> list[Any]:
    from grader.pipeline.grader import Grader
    from grader.rubric.store import load_rubrics

    g = Grader(build_settings(rubrics=rubrics_dir))
    rubrics = load_rubrics(g.rubrics_dir)
    if not rubrics:
        from grader.errors import InputError

        raise InputError("no rubrics: import a bank first (grader bank import)", file=g.rubrics_dir)
    return rubrics


def answers_file(n: int, rubrics_dir: Path | None, path: Path | None = None, seed: int = 0) -> Path:
    """The synthetic answers file for n rows, generated on first use and reused after."""
    from grader.pipeline.synthetic import write_answers

    target = path or Path(".grader-cache") / "bench" / f"answers-{n}-seed{seed}.jsonl"
    if not target.exists():
        write_answers(_rubrics(rubrics_dir), target, n, seed)
    return target


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return env


def run_measured(cmd: list[str], poll_s: float = 0.05) -> tuple[float, float, int, str]:
    """Run cmd; return (wall seconds, peak RSS MB of it and its children, exit code, stderr tail)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    peak = 0
    ps = psutil.Process(proc.pid)
    # stderr is drained after exit; the batch writes little there with --no-progress.
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    return wall, peak / 2**20, proc.returncode, err[-2000:]


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(help="Benchmarks that print JSON figures next to their baselines.", no_args_is_help=True)
    app.add_typer(bench_app, name="bench")

    @bench_app.command("make-answers")
    def make_answers(
        n: Annotated[int, typer.Option("--n", min=1, help="Rows to write.")] = 10_000,
        out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")] = Path("answers.jsonl"),
        seed: Annotated[int, typer.Option("--seed")] = 0,
        rubrics: RubricsOpt = None,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    ) -> None:
        """Write N synthetic answers (mixed/truncated/perturbed reference sentences) as JSONL."""
        from grader.errors import InputError
        from grader.pipeline.synthetic import write_answers

        if out.exists() and not force:
            raise InputError("exists; use --force to replace it", file=out)
        write_answers(_rubrics(rubrics), out, n, seed)
        _emit({"written": n, "path": str(out), "seed": seed})

    @bench_app.command("offline")
    def offline(
        n: Annotated[int, typer.Option("--n", min=1, help="Answers to grade.")] = 10_000,
        answers: Annotated[
            Path | None, typer.Option("--answers", help="Answer file (default: generated, cached).")
        ] = None,
        rubrics: RubricsOpt = None,
    ) -> None:
        """Offline batch throughput and peak memory vs the raw encoder on the same answers."""
        src = answers or answers_file(n, rubrics)
        with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
            out, summ = Path(tmp) / "out.jsonl", Path(tmp) / "summary.json"
            cmd = [
                sys.executable, "-m", "grader", "batch", str(src), "-o", str(out), "--judge", "none",
                "--no-progress", "--summary-json", str(summ),
            ]
            if rubrics is not None:
                cmd += ["--rubrics", str(rubrics)]
            raw_before = raw_encode_subprocess(src)
            wall, peak_mb, rc, err = run_measured(cmd)
            if rc != 0:
                typer.echo(err, err=True)
                raise typer.Exit(rc)
            summary = json.loads(summ.read_text())
            rows = summary["rows"]

        # The baseline runs in fresh processes like the batch, before and after it: on a shared machine
        # the load drifts, and bracketing the batch makes that drift visible instead of hidden.
        raws = [raw_before, raw_encode_subprocess(src)]
        raw = {"per_s": statistics.mean(r["per_s"] for r in raws), "batch_size": raws[0]["batch_size"]}
        batch_rate = summary["rows_per_s"]
        raw_cpu = statistics.mean(r["cpu_s_per_answer"] for r in raws)
        batch_cpu = summary["cpu_s"] / rows if rows else 0.0
        _emit(
            {
                "benchmark": "offline",
                "answers": rows,
                "errors": summary["errors"],
                "batch_answers_per_s": batch_rate,
                "batch_wall_s_including_startup": round(wall, 2),
                "batch_grading_s": summary["elapsed_s"],
                "baseline_raw_encode_per_s": round(raw["per_s"], 2),
                "baseline_raw_encode_per_s_before_after": [round(r["per_s"], 2) for r in raws],
                "baseline_peak_rss_mb": round(max(r["peak_rss_mb"] for r in raws), 1),
                "baseline_sample_rows": raws[0]["n"],
                "ratio_to_raw_encoder": round(batch_rate / raw["per_s"], 3) if raw["per_s"] else None,
                "target_ratio": 0.8,
                # CPU seconds per answer, each process its own: other load on the machine slows the wall
                # clock of whichever side it hits, but barely changes the CPU each side spends.
                "cpu_ms_per_answer": round(batch_cpu * 1000, 2),
                "baseline_raw_encode_cpu_ms_per_answer": round(raw_cpu * 1000, 2),
                "cpu_ratio_to_raw_encoder": round(raw_cpu / batch_cpu, 3) if batch_cpu else None,
                "peak_rss_mb": round(peak_mb, 1),
                "rss_limit_mb": 1536,
                "mean_score": summary["mean_score"],
                "encoder_batch_size": raw["batch_size"],
                "cpu_count": os.cpu_count(),
            }
        )

    @bench_app.command("latency")
    def latency(
        runs: Annotated[int, typer.Option("--runs", min=1)] = 3,
        question_id: Annotated[str, typer.Option("--question-id")] = "easy-2",
        rubrics: RubricsOpt = None,
    ) -> None:
        """Cold-start wall time of `grader grade --judge none` vs importing torch alone."""
        grade_cmd = [sys.executable, "-m", "grader", "grade", "--question-id", question_id, "--judge", "none",
                     "--answer", DEFAULT_ANSWER, "--json"]
        if rubrics is not None:
            grade_cmd += ["--rubrics", str(rubrics)]
        base_cmd = [sys.executable, "-c", "import torch"]
        grade_t, base_t = [], []
        for _ in range(runs):
            wall, _, rc, err = run_measured(base_cmd)
            base_t.append(wall)
            wall, peak, rc, err = run_measured(grade_cmd)
            if rc != 0:
                typer.echo(err, err=True)
                raise typer.Exit(rc)
            grade_t.append(wall)
        _emit(
            {
                "benchmark": "latency",
                "runs": runs,
                "grade_cold_s_median": round(statistics.median(grade_t), 3),
                "grade_cold_s_all": [round(t, 3) for t in grade_t],
                "baseline_import_torch_s_median": round(statistics.median(base_t), 3),
                "baseline_import_torch_s_all": [round(t, 3) for t in base_t],
                "overhead_over_import_torch_s": round(statistics.median(grade_t) - statistics.median(base_t), 3),
                "peak_rss_mb_last_grade": round(peak, 1),
            }
        )

    @bench_app.command("judge")
    def judge_bench(
        n: Annotated[int, typer.Option("--n", min=1, help="Answers to judge.")] = 8,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 2,
        max_tokens: Annotated[int, typer.Option("--max-tokens", min=16, help="Reply limit, both paths.")] = 512,
        rubrics: RubricsOpt = None,
    ) -> None:
        """Judge throughput through the local server vs the server's raw throughput on the same prompts."""
        from grader.pipeline.judge_bench import run_judge_bench

        settings = build_settings(rubrics=rubrics)
        _emit(run_judge_bench(n, concurrency, answers_file(max(n, 100), rubrics), settings, max_tokens))


RAW_SAMPLE = 2000  # the baseline's rate is measured on the first rows: a rate, not a total, is compared


def raw_encode_subprocess(answers: Path, limit: int = RAW_SAMPLE) -> dict[str, Any]:
    """raw_encode_throughput in a fresh process (same start-up state as the batch it is compared with)."""
    code = (
        "import json, resource, sys; from pathlib import Path; from grader.config import load_settings; "
        "from grader.cli.bench import raw_encode_throughput as f; "
        "r = f(Path(sys.argv[1]), load_settings(), int(sys.argv[2])); "
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))"
    )
    p = subprocess.run([sys.executable, "-c", code, str(answers), str(limit)], capture_output=True, text=True,
                       env=_env())
    if p.returncode != 0:
        raise RuntimeError(f"raw encoder baseline failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def raw_encode_throughput(answers: Path, settings: Any, limit: int | None = None) -> dict[str, Any]:
    """Answers/s of the bare encoder, SentenceTransformer.encode itself, on the answer texts of the file.

    The baseline is sentence-transformers even though grading runs the bundled model on the light
    runtime (same numbers, faster start-up): the target is stated against the library, not our copy.
    """
    from sentence_transformers import SentenceTransformer

    from grader.embedding.encoder import bundled_model_path

    texts: list[str] = []
    with answers.open(encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["answer"])
            if limit and len(texts) >= limit:
                break
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
