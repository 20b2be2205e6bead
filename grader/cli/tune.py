"""`grader tune DATASET -o CONFIG`: fit calibration, combination weights and judge prompt by grouped CV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import (
    BaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    JudgeOpt,
    ModelOpt,
    NoCacheOpt,
    ProviderOpt,
    RubricsOpt,
    review_share_option,
)

PromptsOpt = Annotated[
    list[str] | None,
    typer.Option("--prompt", help="Judge prompt id to consider; repeat to pick the best of several (needs a judge)."),
]


def register(app: typer.Typer) -> None:
    @app.command("tune")
    def tune_command(
        dataset: Annotated[Path, typer.Argument(metavar="INPUT", help="Graded eval set (JSONL, or CSV with --map).")],
        output: Annotated[Path, typer.Option("-o", "--output", help="Config file to write (.yaml/.yml/.json).")],
        config: ConfigOpt = None,
        prompt: PromptsOpt = None,
        judge: JudgeOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
        provider: ProviderOpt = None,
        rubrics: RubricsOpt = None,
        no_cache: NoCacheOpt = False,
        metric: Annotated[str, typer.Option("--metric", help="Agreement to maximise: qwk, pearson, spearman, mae, rmse, exact, within1.")] = "qwk",
        folds: Annotated[int, typer.Option("--folds", min=0, help="Outer folds by question; 0 = leave one question out.")] = 0,
        inner_folds: Annotated[int, typer.Option("--inner-folds", min=2, help="Inner folds (by question) for choosing.")] = 5,
        resamples: Annotated[int, typer.Option("--resamples", min=0, help="Bootstrap resamples for the intervals.")] = 1000,
        mapping: Annotated[list[str] | None, typer.Option("--map", help="CSV column mapping FIELD=COLUMN.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output config/calibration.")] = False,
        json_out: JsonOpt = False,
        review_share: Annotated[float | None, review_share_option(
            "Also fit the confidence model so that this share of answers goes to review; written beside the "
            "config as NAME.confidence.json.")] = None,
    ) -> None:
        """Fit the combination weights and calibration with question-grouped cross-validation.

        Reports the nested cross-validated agreement of the tuned procedure beside the default's (never the
        in-sample figure), then writes a config that grade, batch and eval accept with --config, and the refitted
        calibration as JSON beside it.
        """
        from grader.cli.common import build_settings
        from grader.errors import InputError
        from grader.evaluation.datasets import load_dataset, parse_mapping
        from grader.evaluation.tune_run import run_tune

        if output.suffix not in (".yaml", ".yml", ".json"):
            raise InputError("output config must be .yaml, .yml or .json", file=output)
        calibration_out = output.with_name(output.stem + ".calibration.json")
        confidence_out = output.with_name(output.stem + ".confidence.json") if review_share is not None else None
        for p in (output, calibration_out, *([confidence_out] if confidence_out is not None else [])):
            if p.exists() and not force:
                raise InputError("file exists; pass --force to overwrite", file=p)
        if metric not in ("qwk", "pearson", "spearman", "mae", "rmse", "exact", "within1"):
            raise typer.BadParameter(f"--metric {metric!r} is not one of qwk, pearson, spearman, mae, rmse, exact, within1")
        ds = load_dataset(dataset, parse_mapping(mapping or []))
        for problem in ds.errors:
            typer.echo(f"warning: skipped row: {problem}", err=True)
        for note in ds.notes:
            typer.echo(f"note: {note}", err=True)
        settings = build_settings(
            config=config, judge=judge, base_url=base_url, model=model, provider=provider, rubrics=rubrics,
            no_cache=no_cache,
        )
        outcome = run_tune(
            ds, settings, prompts=list(prompt or []), metric=metric, folds=folds or None, inner_folds=inner_folds,
            resamples=resamples, base_config=config, output=output, calibration_out=calibration_out,
            review_share=review_share, confidence_out=confidence_out,
        )
        if json_out:
            typer.echo(json.dumps(outcome.to_json(), indent=2))
        else:
            typer.echo(outcome.render())


