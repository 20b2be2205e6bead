"""`grader batch INPUT -o OUTPUT`: grade an answer file (CSV or JSONL) into a results file.

Every input row yields exactly one record (a grade, or an error record naming why); records are
appended as they finish, so an interrupted run continues with --resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from grader.cli.common import (
    BaseUrlOpt,
    ConfigOpt,
    JudgeOpt,
    ModelOpt,
    NoCacheOpt,
    PromptOpt,
    ProviderOpt,
    RubricsOpt,
    SamplesOpt,
    apply_pass_mark,
    build_settings,
)
from grader.cli.grade import MaxCharsOpt, NoFallbackOpt, PassMarginOpt, PassMarkOpt
from grader.pipeline.batch import DEFAULT_CHUNK
from grader.pipeline.grader import DEFAULT_MAX_ANSWER_CHARS

if TYPE_CHECKING:
    from grader.pipeline.batch import BatchSummary


def summary_table(summary: BatchSummary, output: Path, judge: str) -> Any:
    from rich.table import Table

    t = Table(title=f"batch summary → {output}", show_header=False, title_justify="left", box=None)
    t.add_column(style="bold")
    t.add_column()
    d = summary.as_dict()
    t.add_row("rows written", str(d["rows"]))
    if d["skipped_already_done"]:
        # After --resume the counts below cover the whole file, the earlier run's records too.
        t.add_row("already done (resume)", str(d["skipped_already_done"]))
        t.add_row("rows in OUTPUT", str(d["rows_in_output"]))
    t.add_row("graded", str(d["graded"]))
    if d["fallback"]:
        t.add_row("fallback (judge failed)", f"[yellow]{d['fallback']}[/]")
    if d["unscored"]:
        t.add_row("unscored", f"[red]{d['unscored']}[/]")
    err = f"[red]{d['errors']}[/]" if d["errors"] else "0"
    if d["error_lines"]:
        more = "…" if d["errors"] > len(d["error_lines"]) else ""
        err += f"  (lines {', '.join(map(str, d['error_lines']))}{more})"
    t.add_row("errors", err)
    if d["mean_score"] is not None:
        t.add_row("mean score", f"{d['mean_score']:.2f} / {d['max_score']:g}")
        total = sum(d["distribution"].values())
        for bucket, n in d["distribution"].items():
            bar = "█" * max(1, round(30 * n / total)) if n else ""
            t.add_row(f"  {bucket}", f"{n:>6}  {bar}")
    t.add_row("judge", judge)
    if d["prompt_tokens"] or d["completion_tokens"]:
        tokens = f"{d['prompt_tokens']} in + {d['completion_tokens']} out"
        if d["cost_usd"] is not None:
            tokens += f"  (${d['cost_usd']:.4f})"
        t.add_row("tokens", tokens)
    t.add_row("time", f"{d['elapsed_s']:.1f} s  ({d['rows_per_s']:.1f} rows/s)")
    return t


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Answer file: .csv or .jsonl.")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Results file: .csv or .jsonl.")],
        id_col: Annotated[str, typer.Option("--id-col", help="Column/field holding the row id.")] = "id",
        question_id_col: Annotated[
            str, typer.Option("--question-id-col", help="Column/field holding the question id.")
        ] = "question_id",
        answer_col: Annotated[str, typer.Option("--answer-col", help="Column/field holding the answer.")] = "answer",
        input_format: Annotated[
            str | None, typer.Option("--format", help="Input format when the extension does not say: csv|jsonl.")
        ] = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue an interrupted run: grade only rows missing from OUTPUT.")
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing OUTPUT.")] = False,
        full: Annotated[bool, typer.Option("--full", help="Write the whole grade (all components) per row.")] = False,
        chunk_size: Annotated[
            int, typer.Option("--chunk-size", min=1, help="Rows read ahead and sorted by length before encoding.")
        ] = DEFAULT_CHUNK,
        concurrency: Annotated[
            int | None, typer.Option("--concurrency", min=1, help="Judge calls in flight (default: settings).")
        ] = None,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
        summary_json: Annotated[
            Path | None, typer.Option("--summary-json", help="Also write the summary as JSON to this file.")
        ] = None,
        judge: JudgeOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
        provider: ProviderOpt = None,
        prompt: PromptOpt = None,
        samples: SamplesOpt = None,
        rubrics: RubricsOpt = None,
        config: ConfigOpt = None,
        no_cache: NoCacheOpt = False,
        no_fallback: NoFallbackOpt = False,
        max_answer_chars: MaxCharsOpt = DEFAULT_MAX_ANSWER_CHARS,
        review_out: Annotated[
            Path | None,
            typer.Option("--review-out", help="Write the answers that need a person to this CSV, with an empty "
                         "human_score column to fill in (then: grader eval/tune REVIEW.csv)."),
        ] = None,
        pass_mark: PassMarkOpt = None,
        pass_margin: PassMarginOpt = None,
        engine: Annotated[
            str, typer.Option("--engine", help="local: this process; ray: a pool of Ray workers (pip install "
                              "'grader[ray]'), on a local Ray or the cluster at --ray-address / RAY_ADDRESS.")
        ] = "local",
        ray_address: Annotated[
            str | None, typer.Option("--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a "
                                     "local Ray started for the run).")
        ] = None,
        workers: Annotated[
            int | None, typer.Option("--workers", min=1, help="Ray workers (default: one per CPU of the cluster).")
        ] = None,

    ) -> None:
        """Grade every row of INPUT into OUTPUT; bad rows become error records and the run goes on.

        Rows over --max-answer-chars (default 20,000) become the error record
        "answer too long (N chars > LIMIT)" rather than being graded on a truncated prefix.
        One run writes an OUTPUT at a time: a second run on the same file is refused while the first runs.
        Exit codes: 0 done (even with error records), 2 usage or input error (unreadable INPUT,
        no answer column, OUTPUT exists without --resume/--force, OUTPUT in use by another run),
        3 rows left unscored because the judge failed and --no-fallback forbids the offline score,
        4 OUTPUT could not be written (disk full, I/O error; the run stops, the file stays resumable),
        130 interrupted (rerun with --resume).
        """
        if resume and force:
            raise typer.BadParameter("--resume and --force exclude each other")
        if engine not in ("local", "ray"):
            raise typer.BadParameter(f"--engine must be local or ray, not {engine!r}")
        if engine == "ray":
            from grader.pipeline.ray_engine import import_ray

            import_ray()  # without Ray installed, say how to install it before anything else
        import warnings

        # Library deprecation notices are for developers, not for someone reading a grade.
        warnings.filterwarnings("ignore", category=FutureWarning)
        settings = build_settings(config, judge, base_url, model, provider, prompt, samples, rubrics, no_cache)
        if no_fallback:
            settings.judge.fallback = False
        if concurrency is not None:
            settings.judge.concurrency = concurrency
        apply_pass_mark(settings, pass_mark, pass_margin)

        from rich.console import Console

        from grader.cli.batch_progress import BatchProgress
        from grader.errors import JudgeUnavailable
        from grader.pipeline.batch import BatchOptions, open_output, run_batch
        from grader.pipeline.batch_io import Columns, count_rows, detect_format
        from grader.pipeline.grader import Grader
        from grader.pipeline.review import ReviewTally

        opts = BatchOptions(
            input=input_path,
            output=output,
            columns=Columns(id=id_col, question_id=question_id_col, answer=answer_col),
            input_format=input_format,
            resume=resume,
            force=force,
            full=full,
            chunk_size=chunk_size,
        )
        console = Console(stderr=True)
        if review_out is not None and review_out.resolve() in (output.resolve(), input_path.resolve()):
            raise typer.BadParameter("--review-out must be a file of its own, not INPUT or OUTPUT")
        opts.review = ReviewTally(review_out, force=force, append=resume)
        # INPUT's header and OUTPUT (writable, not locked by another run, --resume/--force) are checked,
        # and OUTPUT locked, before any model is loaded.
        opened = open_output(opts)
        failed = True
        try:
            grader = Grader(settings, max_answer_chars=max_answer_chars)
            judge_desc = grader.describe_judge()
            console.print(f"[dim]judge: {judge_desc}[/]")
            # Rows, not bytes, make the percentage: one quick pass counts them (not needed without progress).
            total = 0 if no_progress else count_rows(input_path, detect_format(input_path, input_format))
            view = BatchProgress(console, total)
            if engine == "local":  # the Ray workers load their own
                with view.loading():
                    _ = grader.scorer

            written = [0]

            def on_progress(read: int, s: BatchSummary) -> None:
                written[0] = s.rows
                if not no_progress:
                    view.update(read, s)

            engine_report: dict[str, Any] | None = None

            def grade() -> BatchSummary:
                nonlocal engine_report
                if engine == "local":
                    return run_batch(grader, opts, on_progress, opened)
                from grader.pipeline.ray_engine import RayOptions, run_batch_ray

                def on_worker(w: dict[str, Any]) -> None:
                    console.print(f"[dim]ray worker pid {w['pid']} on node {w['node'][:12]}[/]")

                summary, report = run_batch_ray(
                    settings, opts, RayOptions(ray_address, workers, on_worker=on_worker), on_progress, opened,
                    rubrics_dir=grader.rubrics_dir, max_answer_chars=max_answer_chars)
                engine_report = report.as_dict()
                return summary

            try:
                if no_progress:
                    summary = grade()
                else:
                    with view:
                        summary = grade()
                        view.update(total, summary, final=True)
            except KeyboardInterrupt:
                console.print(
                    f"[yellow]interrupted: {written[0]} records written to {output}; "
                    "run again with --resume to finish[/]"
                )
                raise
            failed = False
        finally:
            opened.close(failed=failed)
        console.print(summary_table(summary, output, judge_desc))
        for warning in summary.warnings:
            console.print(f"[yellow]warning: {warning}[/]")
        if opts.review is not None:
            opts.review.close()
            console.print(opts.review.summary_line())
        if summary.torn_bytes:
            console.print(f"[dim]resume: dropped a torn last record ({summary.torn_bytes} bytes) and re-graded it[/]")
        if summary_json is not None:
            payload = {**summary.as_dict(), "input": str(input_path), "output": str(output), "judge": judge_desc,
                       "review": opts.review.as_dict() if opts.review is not None else None,
                       "engine": engine, "ray": engine_report}
            summary_json.write_text(json.dumps(payload, indent=2) + "\n")
        if summary.unscored:
            raise JudgeUnavailable(
                f"{summary.unscored} row(s) unscored: the judge failed and --no-fallback forbids the offline "
                f"score (see their records in {output})"
            )
