"""`grader bench ...`: measured figures, printed as JSON, each next to its baseline from the same run.

The benchmarks themselves live in grader/bench/ (one module each); this module only parses options.

- make-answers: a synthetic answer file from the rubrics (input for the other benchmarks).
- offline: `grader batch --judge none` on N answers per embedding runtime (answers/s, peak RSS) vs raw
  SentenceTransformer.encode on the same answers.
- latency: cold `grader grade --judge none` per runtime vs a cold raw SentenceTransformer.encode and
  `import torch`.
- agreement: every runtime's grades against the torch runtime's on Mohler dev and the interview set.
- judge: answers through the Judge (with concurrency) vs the same prompts posted raw to the local server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from grader.cli.common import RubricsOpt, build_settings

RuntimeOpt = Annotated[
    list[str] | None,
    typer.Option("--runtime", help="Embedding runtime to measure (repeatable; default: onnx-int8, onnx, torch)."),
]


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, indent=2))


def _runtimes(given: list[str] | None, default: tuple[str, ...]) -> list[str]:
    from grader.embedding.runtime import RUNTIMES

    for rt in given or ():
        if rt not in RUNTIMES or rt == "auto":
            raise typer.BadParameter(f"--runtime must be one of {', '.join(RUNTIMES[1:])}, not {rt!r}")
    return list(given or default)


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
        from grader.bench.make_answers import write

        write(build_settings(rubrics=rubrics).rubrics_dir, out, n, seed, force)
        _emit({"written": n, "path": str(out), "seed": seed})

    @bench_app.command("offline")
    def offline(
        n: Annotated[int, typer.Option("--n", min=1, help="Answers to grade.")] = 10_000,
        answers: Annotated[
            Path | None, typer.Option("--answers", help="Answer file (default: generated, cached).")
        ] = None,
        runtime: RuntimeOpt = None,
        raw_sample: Annotated[
            int, typer.Option("--raw-sample", min=0, help="Rows the raw baseline encodes (0: all, the same answers).")
        ] = 0,
        rubrics: RubricsOpt = None,
        engine: Annotated[
            str, typer.Option("--engine", help="local: runtimes vs the raw encoder; ray: the Ray engine vs the "
                              "local engine on the same answers.")
        ] = "local",
        workers: Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers (--engine ray).")] = None,
    ) -> None:
        """Offline batch throughput and peak memory per runtime vs the raw encoder on the same answers."""
        from grader.bench.make_answers import answers_file
        from grader.bench.offline import RUNTIMES, batch_throughput

        src = answers or answers_file(n, build_settings(rubrics=rubrics).rubrics_dir)
        if engine == "ray":
            from grader.bench.ray_offline import ray_vs_local

            _emit(ray_vs_local(src, rubrics, workers))
            return
        if engine != "local":
            raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
        _emit(batch_throughput(src, _runtimes(runtime, RUNTIMES), rubrics, raw_sample or None))

    @bench_app.command("latency")
    def latency(
        runs: Annotated[int, typer.Option("--runs", min=1)] = 5,
        question_id: Annotated[str, typer.Option("--question-id")] = "easy-2",
        runtime: RuntimeOpt = None,
        rubrics: RubricsOpt = None,
    ) -> None:
        """Cold-start wall time of `grader grade --judge none` per runtime vs raw SentenceTransformer.encode."""
        from grader.bench.latency import grade_latency
        from grader.bench.offline import RUNTIMES

        _emit(grade_latency(runs, _runtimes(runtime, RUNTIMES), question_id, rubrics))

    @bench_app.command("agreement")
    def agreement(runtime: RuntimeOpt = None) -> None:
        """Every runtime's offline grades vs the torch runtime's: Mohler dev CV Pearson, interview QWK, per answer."""
        from grader.bench.agreement import DEFAULT_RUNTIMES, compare, default_sets

        _emit(compare(_runtimes(runtime, DEFAULT_RUNTIMES), default_sets()))

    @bench_app.command("judge")
    def judge_bench(
        n: Annotated[int, typer.Option("--n", min=1, help="Answers to judge.")] = 8,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 2,
        max_tokens: Annotated[int, typer.Option("--max-tokens", min=16, help="Reply limit, both paths.")] = 512,
        rubrics: RubricsOpt = None,
    ) -> None:
        """Judge throughput through the local server vs the server's raw throughput on the same prompts."""
        from grader.bench.judge import run_judge_bench
        from grader.bench.make_answers import answers_file

        settings = build_settings(rubrics=rubrics)
        _emit(run_judge_bench(n, concurrency, answers_file(max(n, 100), settings.rubrics_dir), settings, max_tokens))
