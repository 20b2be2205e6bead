"""Refit the shipped confidence model on several graded sets at once, for the shipped calibration.

    python -m grader.evaluation.refit_confidence ../shared/data/mohler/dev.jsonl eval/interview/answers.jsonl \\
        eval/interview/holdout.jsonl --review-share 0.25 --write grader/data/confidence.json

The confidence model predicts how far a grade is from a person's. It must be fitted on the errors of the
calibration it ships with, on the kinds of answer it will see: a model fitted on one course's errors under that
course's own calibration thinks every interview answer is doubtful (it sent 73 % of eval/interview/answers.jsonl
to review). So, like `python -m grader.embedding.refit` for the calibration:

1. every set is graded offline (`--judge none`) and its answers get the **held-out** score of the shipped
   calibration's recipe, refitted on all sets pooled without the answer's question (each set the same total
   weight, as the calibration was fitted);
2. the confidence model is fitted on those held-out errors, each set the same total weight (trees, quantiles
   and the review share are weighted), and written with its provenance;
3. the honest figure: per outer fold of questions, the calibration recipe and the confidence model are both
   refitted on the other questions only (the model on their inner held-out errors) and the held-out answers are
   assessed; per set it prints the share flagged and the MAE of unflagged over all answers.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from grader.embedding.calibration import (
    Calibration,
    Source,
    _display_path,
    default_calibration_path,
    sha256_file,
)
from grader.embedding.crossval import SignalRow, balanced_weights, cv_predictions
from grader.errors import InputError
from grader.evaluation.runner import ItemOutcome
from grader.evaluation.selective import (
    Selective,
    assess_row,
    fit_confidence,
    render_selective,
    risk_coverage,
    row_features,
)
from grader.evaluation.tune import grouped_folds, stamp
from grader.pipeline.confidence import ConfidenceModel


class Pool:
    """Graded answers of several sets, with the weight that gives each set the same total.

    Answers are grouped by question id across the sets, so holding a question out holds out every set's answers
    to it (the interview sets answer the same 22 questions)."""

    def __init__(self, sets: dict[Path, tuple[list[ItemOutcome], float]]) -> None:
        self.paths = list(sets)
        self.set_weights = balanced_weights([len(items) for items, _ in sets.values()])
        self.set_tops = [top for _, top in sets.values()]
        self.items = [it for items, _ in sets.values() for it in items]
        self.rows = [SignalRow(signals=it.signals, score=it.human, max_score=top, group=it.question_id, weight=w,
                               kind=it.answer_kind)
                     for (items, top), w in zip(sets.values(), self.set_weights, strict=True) for it in items]
        sizes = np.cumsum([0, *(len(items) for items, _ in sets.values())])
        self.members = [np.arange(a, b) for a, b in itertools.pairwise(sizes)]  # row indices per set
        self.groups = [r.group for r in self.rows]
        self.human = np.array([r.score for r in self.rows])
        self.top = np.array([r.max_score for r in self.rows])
        self.weights = np.array([r.weight for r in self.rows])


def grade_offline(path: Path) -> tuple[list[ItemOutcome], float]:
    """Every answer of one set, graded with the shipped settings and no judge."""
    from grader.config import Settings
    from grader.evaluation.datasets import load_dataset
    from grader.evaluation.runner import run

    ds = load_dataset(path, {}, strict=False)
    settings = Settings.model_validate({"judge": {"backend": "none"}})
    result = run(ds, settings)
    return [it for it in result.items if it.embedding is not None and it.signals], ds.max_score


def recipe_scores(cal: Calibration, rows: list[SignalRow], test_masks: list[np.ndarray] | None = None) -> np.ndarray:
    """Held-out scores from the calibration's recipe: each question's rows from a refit without it, or, with
    ``test_masks``, each mask's rows from a refit on the rows in no mask."""
    return cv_predictions(rows, cal.features, cal.alpha, cal.gate, None, cal.gates, cal.cap, cal.stretch,
                          test_masks=test_masks)


def held_out(cal: Calibration, rows: list[SignalRow], train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Scores of rows[test] from the calibration's recipe refitted on rows[train] (indices)."""
    mask = np.zeros(len(train) + len(test), dtype=bool)
    mask[len(train):] = True
    return recipe_scores(cal, [rows[i] for i in (*train, *test)], [mask])[len(train):]


def loqo(cal: Calibration, rows: list[SignalRow]) -> np.ndarray:
    """Each row's score from the recipe refitted without its question."""
    return recipe_scores(cal, rows)


def fit_on(pool: Pool, idx: np.ndarray, pred: np.ndarray, share: float, provenance: dict | None = None) -> ConfidenceModel:
    """The confidence model from the held-out scores `pred` of the rows `idx`."""
    feats = [row_features(pool.items[i], float(p), float(p), None, float(pool.top[i])) for i, p in zip(idx, pred, strict=True)]
    err = np.abs(pred - pool.human[idx]) / pool.top[idx]
    return fit_confidence(feats, err, err, [bool(pool.items[i].review_facts) for i in idx], [False] * len(idx), share,
                          groups=[pool.groups[i] for i in idx], provenance=provenance, weights=pool.weights[idx])


def nested(cal: Calibration, pool: Pool, share: float, folds: int) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Held-out score, confidence and reasons per answer: recipe and confidence model refitted per outer fold."""
    n = len(pool.rows)
    score, conf = np.zeros(n), np.zeros(n)
    codes: list[list[str]] = [[] for _ in range(n)]
    for test in grouped_folds(pool.groups, folds):
        train = np.setdiff1d(np.arange(n), test)
        inner = loqo(cal, [pool.rows[i] for i in train])
        model = fit_on(pool, train, inner, share)
        score[test] = held_out(cal, pool.rows, train, test)
        for i in test:
            conf[i], codes[i] = assess_row(model, pool.items[i], float(score[i]), float(score[i]), None,
                                           float(pool.top[i]))
    return score, conf, codes


def per_source(pool: Pool, score: np.ndarray, conf: np.ndarray, codes: list[list[str]]) -> dict[Path, Selective]:
    out = {}
    for path, idx, top in zip(pool.paths, pool.members, pool.set_tops, strict=True):
        sel = risk_coverage(pool.human[idx].tolist(), score[idx].tolist(), conf[idx].tolist(), [codes[i] for i in idx],
                            top)
        if sel is not None:
            out[path] = sel
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.evaluation.refit_confidence",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+", help="graded sets (JSONL, as grader eval reads)")
    ap.add_argument("--review-share", type=float, default=0.25, help="share of answers to send to review")
    ap.add_argument("--calibration", type=Path, default=None, help="calibration whose errors to model (default: shipped)")
    ap.add_argument("--folds", type=int, default=10, help="outer folds by question for the honest figure (0: one per question)")
    ap.add_argument("--write", type=Path, default=None, help="write the confidence model here")
    args = ap.parse_args(argv)
    if not 0.0 <= args.review_share <= 1.0:
        ap.error("--review-share must be in 0..1")

    t0 = time.perf_counter()
    cal_path = args.calibration or default_calibration_path()
    try:
        cal = Calibration.load(cal_path)
        pool = Pool({p: grade_offline(p) for p in args.data})
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"graded {len(pool.rows)} answers of {len(pool.paths)} sets offline in {time.perf_counter() - t0:.1f}s; "
          f"calibration {cal.name} ({args.calibration or 'shipped'})")

    t1 = time.perf_counter()
    score, conf, codes = nested(cal, pool, args.review_share, args.folds)
    figures = per_source(pool, score, conf, codes)
    print(f"\nheld out ({args.folds or 'one per question'} folds of questions over the pooled sets; calibration "
          f"recipe and confidence model refitted on the other questions; {time.perf_counter() - t1:.0f}s):")
    for path, sel in figures.items():
        print()
        print(render_selective(str(path), sel, pool.set_tops[pool.paths.index(path)]))

    pred = loqo(cal, pool.rows)
    total = len(pool.rows)
    sources = [Source(file=_display_path(p), sha256=sha256_file(p), n_rows=len(idx), weight=w)
               for p, idx, w in zip(pool.paths, pool.members, pool.set_weights, strict=True)]
    model = fit_on(pool, np.arange(total), pred, args.review_share, provenance={
        "by": "python -m grader.evaluation.refit_confidence",
        "at": stamp(),
        "calibration": cal.name,
        "sources": [s.model_dump() for s in sources],
        "n_rows": total,
        "n_questions": len(set(pool.groups)),
        "fitted_on": "held-out (leave-one-question-out, pooled) errors of the calibration's recipe, offline",
        "cv": {
            "scheme": f"{args.folds or 'one per question'} folds of questions: recipe and model refitted on the others",
            **{_display_path(p): {"share_flagged": round(s.share_flagged, 4), "mae_all": round(s.mae_all, 4),
                                  "mae_unflagged": s.mae_unflagged and round(s.mae_unflagged, 4)}
               for p, s in figures.items()},
        },
    })
    print(f"\nfitted on all {total} answers: threshold {model.threshold:.4f}, off-topic below {model.offtopic:.4f}, "
          f"{len(model.trees)} trees")
    if args.write:
        model.save(args.write)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
