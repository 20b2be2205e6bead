"""`grader eval DATASET`: agreement with human grades, one or several configurations side by side."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import (
    BaseUrlOpt,
    JsonOpt,
    JudgeOpt,
    ModelOpt,
    NoCacheOpt,
    PromptOpt,
    ProviderOpt,
    RubricsOpt,
    SamplesOpt,
    review_share_option,
)

ConfigsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--config",
        help="Config file (TOML/YAML/JSON), e.g. one written by `grader tune`. Repeat to compare configurations "
        "side by side; the first is the baseline. 'default' means no config file.",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", help="Write report.html (one self-contained file to open in a browser) and report.md "
                 "with its PNG plots into this folder."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="CSV column mapping FIELD=COLUMN, e.g. --map answer=StudentAnswer --map score=Grade."),
]
ItemsOpt = Annotated[
    Path | None, typer.Option("--items", help="Write every answer's human grade and component scores as JSONL.")
]


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        dataset: Annotated[Path, typer.Argument(metavar="INPUT", help="Eval set: JSONL (see eval/README.md) or CSV with --map.")],
        config: ConfigsOpt = None,
        judge: JudgeOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
        provider: ProviderOpt = None,
        prompt: PromptOpt = None,
        samples: SamplesOpt = None,
        rubrics: RubricsOpt = None,
        no_cache: NoCacheOpt = False,
        json_out: JsonOpt = False,
        report: ReportOpt = None,
        items_out: ItemsOpt = None,
        mapping: MapOpt = None,
        strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad row instead of skipping it.")] = False,
        resamples: Annotated[int, typer.Option("--resamples", min=0, help="Bootstrap resamples (0: no intervals).")] = 1000,
        seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 20261126,
        by: Annotated[str, typer.Option("--by", help="Bootstrap unit: question (cluster) or item.")] = "question",
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing report or items file.")] = False,
        review_share: Annotated[float | None, review_share_option(
            "With --cv: the share of answers the refitted confidence model sends to review (default: the "
            "configured model's).")] = None,
        cv: Annotated[
            bool,
            typer.Option(
                "--cv",
                help="Also show each configuration with its calibration refitted by leave-one-question-out "
                "cross-validation: the honest figure when the calibration was fitted on this set.",
            ),
        ] = False,
    ) -> None:
        """Grade an eval set with each configuration and print agreement with the human grades.

        Figures: Pearson, Spearman, Kendall, quadratic weighted kappa, MAE, RMSE, exact and within-one
        agreement, each with a bootstrap 95% interval; with several --config, the paired difference of each
        against the first, called better or worse only when its interval excludes zero.
        """
        from grader.cli.common import build_settings
        from grader.errors import InputError
        from grader.evaluation.datasets import load_dataset, parse_mapping
        from grader.evaluation.notes import eval_notes
        from grader.evaluation.report import render_text, write_report
        from grader.evaluation.runner import cross_validated, run, stderr_progress
        from grader.evaluation.summary import summarise, to_json

        if by not in ("question", "item"):
            raise typer.BadParameter("--by must be question or item")
        if report is not None and (report / "report.html").exists() and not force:
            raise InputError("report folder already holds a report; pass --force to overwrite", file=report)
        if items_out is not None and items_out.exists() and not force:
            raise InputError("file exists; pass --force to overwrite", file=items_out)
        ds = load_dataset(dataset, parse_mapping(mapping or []), strict=strict)
        for problem in ds.errors:
            typer.echo(f"warning: skipped row: {problem}", err=True)
        for note in ds.notes:
            typer.echo(f"note: {note}", err=True)

        configs: list[Path | None] = [_config_or_default(c) for c in config] if config else [None]
        for cfg in configs:
            # Fail before grading anything, not after the first configuration's run.
            if cfg is not None and not cfg.is_file():
                raise InputError("cannot read config file: no such file", file=cfg)
        labels = _labels(configs)
        runs = []
        for cfg, label in zip(configs, labels, strict=True):
            settings = build_settings(
                config=cfg, judge=judge, base_url=base_url, model=model, provider=provider, prompt=prompt,
                samples=samples, rubrics=rubrics, no_cache=no_cache,
            )
            progress = stderr_progress(label) if settings.judge.backend != "none" else None
            runs.append(run(ds, settings, label=label, config_path=cfg, progress=progress))
            if cv:
                runs.append(cross_validated(runs[-1], settings, ds.max_score, review_share=review_share))

        notes = eval_notes(ds, runs)
        if ds.errors:
            notes.append(f"{len(ds.errors)} bad row(s) of the file were skipped (see the warnings).")
        notes += ds.notes
        from grader.evaluation.selective import in_sample_note

        conf_note = in_sample_note(dataset, settings.confidence.model)
        if conf_note:
            notes.append(conf_note)
        questions = len({i.group for i in ds.items})
        summary = summarise(
            str(dataset), runs, len(ds.items), questions, ds.max_score, unit=by, resamples=resamples, seed=seed,  # type: ignore[arg-type]
            notes=notes,
        )
        if items_out is not None:
            with items_out.open("w", encoding="utf-8") as fh:
                for r in runs:
                    for it in r.items:
                        fh.write(json.dumps({"config": r.label, **it.model_dump(exclude={"signals"})}) + "\n")
        if report is not None:
            command = "grader eval " + " ".join(shlex.quote(a) for a in sys.argv[2:])
            html_path = write_report(summary, runs, report, command=command)
            typer.echo(f"report: {html_path}", err=True)
        if json_out:
            typer.echo(json.dumps(to_json(summary), indent=2, ensure_ascii=False))
        else:
            typer.echo(render_text(summary))
            typer.echo(selective_text(summary))


def selective_text(summary: object) -> str:
    """The risk-coverage table of every configuration, below the agreement figures."""
    from grader.evaluation.selective import render_selective

    blocks = [render_selective(r.label, r.selective, summary.max_score)  # type: ignore[attr-defined]
              for r in summary.runs if r.selective is not None]  # type: ignore[attr-defined]
    return "\n" + "\n\n".join(blocks) if blocks else ""


def _config_or_default(path: Path) -> Path | None:
    """`--config default` stands for the built-in settings, so a tuned config can be compared with them."""
    if str(path) == "default" and not path.exists():
        return None
    return path


def _labels(configs: list[Path | None]) -> list[str]:
    """Short unique column names: the config file's stem, 'default' without one."""
    out: list[str] = []
    for cfg in configs:
        base = cfg.stem if cfg is not None else "default"
        label, n = base, 2
        while label in out:
            label, n = f"{base}-{n}", n + 1
        out.append(label)
    return out
