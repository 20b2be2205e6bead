"""From graded runs to the figures: overall with intervals, per component, per question, per answer kind,
confusion matrix, human-human agreement, and paired comparisons between configurations. Pure (no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from grader.evaluation.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Difference,
    Interval,
    Unit,
    bootstrap_metrics,
    paired_difference,
)
from grader.evaluation.metrics import (
    METRIC_NAMES,
    all_metrics,
    confusion_matrix,
    exact_agreement,
    finite_or_none,
    round_half_up,
)
from grader.evaluation.runner import ItemOutcome, RunResult
from grader.evaluation.selective import Selective, selective_of_items

Component = Literal["combined", "embedding", "judge"]
COMPONENTS: tuple[Component, ...] = ("combined", "embedding", "judge")


class Figures(BaseModel):
    """Agreement of one score column with the human grade."""

    n: int
    metrics: dict[str, Interval]

    def point(self, name: str) -> float:
        return self.metrics[name].value


class GroupRow(BaseModel):
    """Agreement within one question (or one answer kind)."""

    key: str
    n: int
    human_mean: float
    grader_mean: float
    mae: float
    pearson: float | None
    qwk: float | None
    exact: float
    flagged: int = Field(default=0, description="Answers the pipeline flagged as addressing the grader.")
    qwk_undefined: str | None = Field(default=None, description="Why qwk is null, when it is.")


class RunSummary(BaseModel):
    label: str
    config_path: str | None
    judge: str
    prompt: str | None
    weights: dict[str, float]
    calibration: str | None
    n: int = Field(description="Answers with a final score (the ones the figures are computed on).")
    skipped: list[str]
    status_counts: dict[str, int]
    overall: Figures
    components: dict[str, Figures] = Field(description="Each component on its own, where it produced scores.")
    vs_single_human: dict[str, Figures] = Field(
        default_factory=dict, description="Grader vs each human alone (fair beside human-human agreement)."
    )
    per_question: list[GroupRow]
    per_kind: list[GroupRow]
    confusion: list[list[int]]
    elapsed_s: float
    cross_validated: bool = False
    selective: Selective | None = Field(default=None, description="Risk against coverage; review flags.")


class Comparison(BaseModel):
    a: str
    b: str
    n: int
    diffs: dict[str, Difference]


class EvalSummary(BaseModel):
    dataset: str
    n_items: int
    n_questions: int
    max_score: float
    unit: Unit
    resamples: int
    seed: int
    level: float = 0.95
    runs: list[RunSummary]
    comparisons: list[Comparison]
    human_human: Figures | None = None
    notes: list[str] = Field(default_factory=list)


def _column(items: Sequence[ItemOutcome], component: Component) -> list[tuple[ItemOutcome, float]]:
    return [(it, v) for it in items if (v := getattr(it, component)) is not None]


def _figures(
    pairs: Sequence[tuple[float, float, str]], max_score: float, unit: Unit, resamples: int, seed: int
) -> Figures:
    human = np.array([p[0] for p in pairs], dtype=np.float64)
    grader = np.array([p[1] for p in pairs], dtype=np.float64)
    groups = [p[2] for p in pairs]
    return Figures(
        n=len(pairs),
        metrics=bootstrap_metrics(human, grader, max_score, groups, n_resamples=resamples, seed=seed, unit=unit),
    )


def _group_rows(scored: Sequence[tuple[ItemOutcome, float]], key: str, max_score: float) -> list[GroupRow]:
    buckets: dict[str, list[tuple[float, float]]] = {}
    flagged: dict[str, int] = {}
    for it, v in scored:
        k = getattr(it, key)
        if k is None:
            continue
        buckets.setdefault(str(k), []).append((it.human, v))
        flagged[str(k)] = flagged.get(str(k), 0) + int(it.flagged)
    rows = []
    for k, pairs in buckets.items():
        h = np.array([p[0] for p in pairs])
        g = np.array([p[1] for p in pairs])
        m = all_metrics(h, g, max_score) if len(pairs) > 1 else {"pearson": math.nan, "qwk": math.nan}
        # With one whole-point human grade in the group, kappa is 0 (or 0/0) whatever the grader does: no figure.
        why = "one human grade" if len(set(round_half_up(h, max_score).tolist())) == 1 else None
        rows.append(
            GroupRow(
                key=k,
                n=len(pairs),
                human_mean=float(h.mean()),
                grader_mean=float(g.mean()),
                mae=float(np.abs(h - g).mean()),
                pearson=finite_or_none(m["pearson"]),
                qwk=None if why else finite_or_none(m["qwk"]),
                exact=exact_agreement(h, g, max_score),
                flagged=flagged.get(k, 0),
                qwk_undefined=why,
            )
        )
    return rows


def summarise_run(run: RunResult, max_score: float, unit: Unit, resamples: int, seed: int) -> RunSummary:
    scored = _column(run.items, "combined")
    components: dict[str, Figures] = {}
    for comp in COMPONENTS:
        col = _column(run.items, comp)
        if not col:
            continue
        if comp != "combined" and "combined" in components and [(it.index, v) for it, v in col] == [
            (it.index, v) for it, v in scored
        ]:
            # Offline, the final score is the embedding score: the same figures, no second bootstrap.
            components[comp] = components["combined"]
            continue
        components[comp] = _figures([(it.human, v, it.question_id) for it, v in col], max_score, unit, resamples, seed)
    overall = components.get("combined") or Figures(
        n=0, metrics={m: Interval(value=math.nan, low=math.nan, high=math.nan) for m in METRIC_NAMES}
    )
    vs_single: dict[str, Figures] = {}
    both = [(it, v) for it, v in scored if it.human_a is not None and it.human_b is not None]
    if both:
        vs_single["a"] = _figures([(it.human_a, v, it.question_id) for it, v in both], max_score, unit, resamples, seed)  # type: ignore[misc]
        vs_single["b"] = _figures([(it.human_b, v, it.question_id) for it, v in both], max_score, unit, resamples, seed)  # type: ignore[misc]
    statuses: dict[str, int] = {}
    for it in run.items:
        statuses[it.status] = statuses.get(it.status, 0) + 1
    conf = (
        confusion_matrix([it.human for it, _ in scored], [v for _, v in scored], max_score)
        if scored
        else np.zeros((int(max_score) + 1, int(max_score) + 1))
    )
    return RunSummary(
        label=run.label,
        config_path=run.config_path,
        judge=run.judge,
        prompt=run.prompt,
        weights=run.weights,
        calibration=run.calibration,
        n=len(scored),
        skipped=run.skipped,
        status_counts=statuses,
        overall=overall,
        components=components,
        vs_single_human=vs_single,
        per_question=_group_rows(scored, "question_id", max_score),
        per_kind=_group_rows(scored, "answer_kind", max_score),
        confusion=conf.astype(int).tolist(),
        elapsed_s=run.elapsed_s,
        cross_validated=run.cross_validated,
        selective=selective_of_items(run.items, max_score),
    )


def compare(
    a: RunResult, b: RunResult, max_score: float, unit: Unit, resamples: int, seed: int
) -> Comparison:
    """B minus A on the answers both scored, every resample shared."""
    sa = {it.index: it for it in a.items if it.combined is not None}
    common = [it for it in b.items if it.combined is not None and it.index in sa]
    diffs = paired_difference(
        [it.human for it in common],
        [sa[it.index].combined for it in common],  # type: ignore[misc]
        [it.combined for it in common],  # type: ignore[misc]
        max_score,
        [it.question_id for it in common],
        n_resamples=resamples,
        seed=seed,
        unit=unit,
    )
    return Comparison(a=a.label, b=b.label, n=len(common), diffs=diffs)


def human_human(run: RunResult, max_score: float, unit: Unit, resamples: int, seed: int) -> Figures | None:
    pairs = [
        (it.human_a, it.human_b, it.question_id)
        for it in run.items
        if it.human_a is not None and it.human_b is not None
    ]
    if not pairs:
        return None
    return _figures(pairs, max_score, unit, resamples, seed)  # type: ignore[arg-type]


def summarise(
    dataset_path: str,
    runs: Sequence[RunResult],
    n_items: int,
    n_questions: int,
    max_score: float,
    unit: Unit = "question",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    notes: Sequence[str] = (),
) -> EvalSummary:
    """Every figure of an eval. Comparisons are each configuration against the first (the baseline)."""
    summaries = [summarise_run(r, max_score, unit, resamples, seed) for r in runs]
    comparisons = []
    for r in runs[1:]:
        # Held-out runs are compared with the first held-out run, in-sample runs with the first run; the first
        # held-out run itself is compared with the in-sample baseline, which shows how optimistic that is.
        same = next((b for b in runs if b.cross_validated == r.cross_validated), runs[0])
        baseline = same if same is not r else runs[0]
        comparisons.append(compare(baseline, r, max_score, unit, resamples, seed))
    return EvalSummary(
        dataset=dataset_path,
        n_items=n_items,
        n_questions=n_questions,
        max_score=max_score,
        unit=unit,
        resamples=resamples,
        seed=seed,
        runs=summaries,
        comparisons=comparisons,
        human_human=human_human(runs[0], max_score, unit, resamples, seed) if runs else None,
        notes=list(notes),
    )


def _selective_json(s: Selective | None) -> dict[str, object] | None:
    if s is None:
        return None
    out: dict[str, object] = s.model_dump(exclude={"curve"})
    out["mae_unflagged_over_all"] = s.ratio
    return out


def to_json(summary: EvalSummary) -> dict[str, object]:
    """The machine-readable figures: per configuration the keys n, pearson, spearman, kendall, qwk, mae, rmse,
    exact, within1, plus intervals, components, per-question rows and comparisons."""

    def flat(f: Figures) -> dict[str, object]:
        out: dict[str, object] = {"n": f.n}
        for name in METRIC_NAMES:
            out[name] = finite_or_none(f.metrics[name].value)
        out["ci95"] = {
            name: [finite_or_none(f.metrics[name].low), finite_or_none(f.metrics[name].high)] for name in METRIC_NAMES
        }
        return out

    configs: dict[str, object] = {}
    for r in summary.runs:
        entry = flat(r.overall)
        entry.update(
            {
                "config": r.config_path,
                "judge": r.judge,
                "prompt": r.prompt,
                "weights": r.weights,
                "calibration": r.calibration,
                "status": r.status_counts,
                "skipped": r.skipped,
                "components": {k: flat(v) for k, v in r.components.items()},
                "vs_single_human": {k: flat(v) for k, v in r.vs_single_human.items()},
                "per_question": [row.model_dump() for row in r.per_question],
                "per_kind": [row.model_dump() for row in r.per_kind],
                "confusion": r.confusion,
                "elapsed_s": r.elapsed_s,
                "selective": _selective_json(r.selective),
            }
        )
        configs[r.label] = entry
    return {
        "dataset": summary.dataset,
        "n_items": summary.n_items,
        "n_questions": summary.n_questions,
        "max_score": summary.max_score,
        "bootstrap": {"unit": summary.unit, "resamples": summary.resamples, "seed": summary.seed, "level": summary.level},
        "configs": configs,
        "comparisons": [
            {
                "a": c.a,
                "b": c.b,
                "n": c.n,
                "diff": {
                    k: {
                        "diff": finite_or_none(d.diff),
                        "low": finite_or_none(d.low),
                        "high": finite_or_none(d.high),
                        "verdict": d.verdict,
                    }
                    for k, d in c.diffs.items()
                },
            }
            for c in summary.comparisons
        ],
        "human_human": flat(summary.human_human) if summary.human_human else None,
        "notes": summary.notes,
    }
