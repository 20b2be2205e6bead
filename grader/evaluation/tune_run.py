"""The I/O side of `grader tune`: grade the set once per prompt, tune, write the config and calibration."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from grader.config import Settings, read_config_file
from grader.errors import InputError
from grader.evaluation.datasets import Dataset
from grader.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, finite_or_none
from grader.evaluation.report import LABELS, md_table, text_table
from grader.evaluation.runner import ItemOutcome, RunResult, run, stderr_progress
from grader.evaluation.selective import Selective, render_selective
from grader.evaluation.tune import Candidate, TuneInputs, Tuner, TuneResult, stamp

# Judge settings a tuned config carries; secrets (api_key) never go into a written file.
_JUDGE_KEYS = ("backend", "base_url", "model", "provider", "prompts_dir", "temperature", "max_tokens", "samples",
               "structured_mode", "logprobs")


class TuneOutcome(BaseModel):
    dataset: str
    result: TuneResult
    config_path: str
    calibration_path: str
    judge: str | None
    confidence_path: str | None = None
    selective: Selective | None = None

    def to_json(self) -> dict[str, Any]:
        r = self.result

        def flat(d: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"n": r.n}
            for m in METRIC_NAMES:
                out[m] = finite_or_none(d[m].value)
                out.setdefault("ci95", {})[m] = [finite_or_none(d[m].low), finite_or_none(d[m].high)]
            return out

        return {
            "dataset": self.dataset,
            "metric": r.metric,
            "scheme": r.scheme,
            "n": r.n,
            "n_questions": r.n_questions,
            "n_candidates": r.n_candidates,
            "default": {"candidate": r.base.describe(), "cv": flat(r.default_cv)},
            "tuned": {"candidate": r.chosen.describe(), "cv": flat(r.tuned_cv)},
            "adopted": r.adopted,
            "written": {"candidate": r.written.describe(), "cv": flat(r.written_cv)},
            "difference": {
                m: {"diff": finite_or_none(d.diff), "low": finite_or_none(d.low), "high": finite_or_none(d.high),
                    "verdict": d.verdict}
                for m, d in r.difference.items()
            },
            "chosen_cv_optimistic": {m: finite_or_none(v) for m, v in r.chosen_cv_optimistic.items()},
            "fold_choices": r.fold_choices,
            "judge_only": {p: flat(v) for p, v in r.judge_only.items()},
            "config": self.config_path,
            "calibration": self.calibration_path,
            "confidence": self.confidence_path,
            "selective_cv": None if self.selective is None else {
                **self.selective.model_dump(exclude={"curve"}), "mae_unflagged_over_all": self.selective.ratio},
        }

    def table(self) -> tuple[list[str], list[list[str]]]:
        r = self.result

        def cell(iv: Any) -> str:
            return f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]"

        header = ["metric (grouped CV)", "default", "tuned", "tuned − default"]
        rows = [["n", str(r.n), str(r.n), ""]]
        for m in METRIC_NAMES:
            d = r.difference[m]
            rows.append(
                [LABELS[m] + (" (lower better)" if m in LOWER_IS_BETTER else ""), cell(r.default_cv[m]),
                 cell(r.tuned_cv[m]), f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] {d.verdict}"]
            )
        return header, rows

    def render(self, markdown: bool = False) -> str:
        r = self.result
        lines = [
            f"tuned on {self.dataset}: {r.n} answers, {r.n_questions} questions; {r.n_candidates} candidates; "
            f"chosen by {r.metric}",
            f"cross-validation: {r.scheme} (figures are held-out; intervals: bootstrap by question)",
            f"default: {r.base.describe()}",
            f"tuned:   {r.chosen.describe()}",
            "",
            md_table(*self.table()) if markdown else text_table(*self.table()),
            "",
            "choices across outer folds: " + "; ".join(f"{k} ×{v}" for k, v in r.fold_choices.items()),
            f"(the chosen candidate's plain CV {r.metric}, selected on the same folds and so optimistic: "
            f"{r.chosen_cv_optimistic[r.metric]:.3f})",
        ]
        for p, figs in r.judge_only.items():
            lines.append(f"judge only, prompt {p}: QWK {figs['qwk'].value:.3f}, Pearson {figs['pearson'].value:.3f}, "
                         f"n {r.n}")
        m = r.metric
        if r.adopted:
            lines.append(f"adopted: the tuned candidate is better by cross-validated {m}; the config holds it.")
        else:
            d = r.difference[m]
            lines.append(
                f"not adopted: tuning was not better by cross-validated {m} ({d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}]);"
                f" the config keeps the default ({r.written.describe()}), whose CV {m} is {r.written_cv[m].value:.3f}."
            )
        if self.selective is not None:
            lines += ["", render_selective("cross-validated by question (calibration and confidence model refitted "
                                           "per held-out question)", self.selective, 0.0)]
        lines += [f"wrote {self.config_path}", f"wrote {self.calibration_path}"]
        if self.confidence_path is not None:
            lines.append(f"wrote {self.confidence_path}")
        return "\n".join(lines)


def _judge_runs(ds: Dataset, settings: Settings, prompts: list[str]) -> dict[str, RunResult]:
    if settings.judge.backend == "none":
        if prompts:
            raise InputError("--prompt needs a judge: pass --judge openai/langchain/auto with an endpoint")
        return {}
    from grader.judge import make_judge

    if make_judge(settings) is None:
        if prompts:
            raise InputError("--prompt needs a judge, and no judge endpoint is configured")
        return {}
    out: dict[str, RunResult] = {}
    for p in prompts or [settings.judge.prompt]:
        s = settings.model_copy(update={"judge": settings.judge.model_copy(update={"prompt": p})})
        out[p] = run(ds, s, label=p, progress=stderr_progress(f"judge {p}"))
    return out


def run_tune(
    ds: Dataset,
    settings: Settings,
    prompts: list[str],
    metric: str,
    folds: int | None,
    inner_folds: int,
    resamples: int,
    base_config: Path | None,
    output: Path,
    calibration_out: Path,
    review_share: float | None = None,
    confidence_out: Path | None = None,
) -> TuneOutcome:
    from grader.embedding.calibration import Calibration, default_calibration_path, fit_calibration

    offline = settings.model_copy(update={"judge": settings.judge.model_copy(update={"backend": "none"})})
    emb_run = run(ds, offline, label="offline")
    judge_runs = _judge_runs(ds, settings, prompts)
    kept = emb_run.items
    if len({it.question_id for it in kept}) < 3:
        raise InputError("tuning needs graded answers to at least three questions", file=ds.path)
    judge_scores: dict[str, list[float | None]] = {}
    judge_open: dict[str, list[float | None]] = {}
    for p, jr in judge_runs.items():
        by_index = {it.index: it for it in jr.items}
        judge_scores[p] = [by_index[it.index].judge if it.index in by_index else None for it in kept]
        judge_open[p] = [by_index[it.index].judge_open if it.index in by_index else None for it in kept]
        # The judge's spread and failures are facts of the judged grade; the offline run cannot know them.
        kept = [_with_judge_facts(it, by_index.get(it.index)) for it in kept]
    inputs = TuneInputs(
        signals=[it.signals for it in kept],
        human=[it.human for it in kept],
        groups=[it.question_id for it in kept],
        max_score=ds.max_score,
        judge=judge_scores,
        judge_open=judge_open,
    )
    base = Calibration.load(settings.calibration or default_calibration_path())
    tuner = Tuner(
        inputs,
        base,
        base_prompt=settings.judge.prompt if judge_scores else None,
        base_weights=(settings.combine.embedding_weight, settings.combine.judge_weight),
        base_band=settings.combine.band,
        metric=metric,
        folds=folds,
    )
    result = tuner.run(inner_k=inner_folds, resamples=resamples)
    chosen = result.written
    cal = fit_calibration(
        inputs.signals,
        inputs.human,
        inputs.groups,
        [ds.max_score] * len(kept),
        features=chosen.recipe.features,
        alpha=chosen.recipe.alpha,
        gate=base.gate,
        gates=base.gates,
        cap=base.cap,
        stretch=tuner.sig.stretch,
        refit_cap_margin=True,
        coverage=base.coverage,
        name=f"tuned on {Path(ds.path).name}",
        data_file=ds.path,
        model_name=base.provenance.model,
        folds=folds,
        notes=f"grader tune {stamp()}: {chosen.describe()}; chosen by nested grouped CV on {metric}",
    )
    calibration_out.parent.mkdir(parents=True, exist_ok=True)
    cal.save(calibration_out)
    selective = None
    if review_share is not None and confidence_out is not None:
        selective = fit_review(tuner, chosen, kept, review_share, ds.path, folds, confidence_out)
    write_config(output, calibration_out, chosen, settings, base_config, result, ds.path,
                 confidence_out if selective is not None else None)
    return TuneOutcome(
        dataset=ds.path,
        result=result,
        config_path=str(output),
        calibration_path=str(calibration_out),
        judge=next(iter(judge_runs.values())).judge if judge_runs else None,
        confidence_path=str(confidence_out) if selective is not None else None,
        selective=selective,
    )


def _with_judge_facts(item: ItemOutcome, judged: ItemOutcome | None) -> ItemOutcome:
    if judged is None:
        return item
    return item.model_copy(update={"review_facts": judged.review_facts, "judge_spread": judged.judge_spread})


def fit_review(
    tuner: Tuner, chosen: Candidate, items: list[ItemOutcome], review_share: float, dataset: str,
    folds: int | None, out: Path,
) -> Selective | None:
    """Fit the confidence model on all rows' out-of-fold errors, save it, and return its honest (nested) figure."""
    import numpy as np

    from grader.embedding.calibration import sha256_file
    from grader.evaluation.selective import cv_selective, fit_confidence, risk_coverage, row_features

    rows = np.arange(len(items))
    top = tuner.top
    emb = tuner._cv_embedding(chosen.recipe, rows, folds)
    comb = tuner.combined(chosen, rows, emb)
    judge = tuner.judge.get(chosen.prompt) if chosen.prompt is not None else None
    jud = [None if judge is None or np.isnan(judge[i]) else float(judge[i]) for i in rows]
    cv = cv_selective(tuner, chosen, items, review_share)
    selective = risk_coverage(tuner.human.tolist(), cv.combined, cv.confidence, cv.review, top)
    model = fit_confidence(
        [row_features(it, float(c), float(e), j, top) for it, c, e, j in zip(items, comb, emb, jud, strict=True)],
        np.abs(comb - tuner.human) / top,
        np.abs(emb - tuner.human) / top,
        [bool(it.review_facts) for it in items],
        [j is not None for j in jud],
        review_share,
        groups=tuner.groups,
        provenance={
            "by": "grader tune --review-share",
            "at": stamp(),
            "data_file": dataset,
            "data_sha256": sha256_file(dataset) if Path(dataset).is_file() else None,
            "n_rows": len(items),
            "n_questions": len(set(tuner.groups)),
            "fitted_on": "out-of-fold errors of " + chosen.describe(),
            "cv": None if selective is None else {
                "scheme": "per held-out question: calibration and confidence model refitted on the others",
                "share_flagged": round(selective.share_flagged, 4),
                "mae_all": round(selective.mae_all, 4),
                "mae_unflagged": selective.mae_unflagged and round(selective.mae_unflagged, 4),
                "mae_flagged": selective.mae_flagged and round(selective.mae_flagged, 4),
            },
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return selective


def write_config(
    output: Path,
    calibration_path: Path,
    chosen: Candidate,
    settings: Settings,
    base_config: Path | None,
    result: TuneResult,
    dataset: str,
    confidence_path: Path | None = None,
) -> None:
    data: dict[str, Any] = read_config_file(base_config) if base_config is not None else {}
    data.pop("tuned", None)
    if isinstance(data.get("judge"), dict):
        data["judge"].pop("api_key", None)
    # Relative to the config file: load_settings resolves it against the config's folder.
    data["calibration"] = os.path.relpath(calibration_path.resolve(), output.resolve().parent)
    if chosen.prompt is not None:
        judge = dict(data.get("judge") or {})
        js = settings.judge.model_dump(mode="json")
        for key in _JUDGE_KEYS:
            if js.get(key) is not None:
                judge[key] = js[key]
        judge["prompt"] = chosen.prompt
        data["judge"] = judge
        data["combine"] = {"embedding_weight": chosen.embedding_weight, "judge_weight": chosen.judge_weight,
                           "band": chosen.band}
    if confidence_path is not None:
        conf = dict(data.get("confidence") or {})
        conf["model"] = os.path.relpath(confidence_path.resolve(), output.resolve().parent)
        data["confidence"] = conf
    m = result.metric
    data["tuned"] = {
        "by": "grader tune",
        "at": stamp(),
        "dataset": dataset,
        "metric": m,
        "scheme": result.scheme,
        "cv_default": round(result.default_cv[m].value, 4),
        "cv_tuned": round(result.tuned_cv[m].value, 4),
        "adopted": result.adopted,
        "cv_written": round(result.written_cv[m].value, 4),
        "cv_difference": [round(result.difference[m].low, 4), round(result.difference[m].high, 4)],
        "verdict": result.difference[m].verdict,
        "candidate": chosen.describe(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".json":
        output.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        header = (
            f"# Written by `grader tune` from {dataset}. Use with --config in grade, batch and eval.\n"
            f"# Cross-validated {m}: tuned {result.tuned_cv[m].value:.3f} vs default {result.default_cv[m].value:.3f}"
            f" ({result.difference[m].verdict}); {'adopted' if result.adopted else 'not adopted, default kept'}.\n"
            "# The judge's API key is not stored here: set OPENAI_API_KEY (or GRADER_JUDGE__API_KEY).\n"
        )
        output.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
