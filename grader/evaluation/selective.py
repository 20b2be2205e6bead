"""Selective grading: fit the confidence model, cross-validate it by question, and measure risk against coverage.

- `fit_confidence` fits grader/pipeline/confidence.py's model from held-out grades: boosted depth-2 regression
  trees predicting |grader - human| from the grade's score and signals (scikit-learn's GradientBoostingRegressor,
  stored as plain arrays), the disagreement margin (90th percentile of the offline scorer's held-out error), the
  off-topic cut (1st percentile of topicality) and the `uncertain` threshold: the expected error above which,
  together with the other reasons, `review_share` of the answers go to review. The threshold is set on
  out-of-fold predictions (inner folds by question), since trees predict their own training rows too well.
- `cv_selective` is the honest figure on the data it is fitted on: per held-out question, the calibration and
  the confidence model are both refitted without it (the confidence model on inner out-of-fold residuals).
- `risk_coverage` turns per-answer (human, grader, confidence, reasons) into the table `grader eval` prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from grader.config import ConfidenceSettings
from grader.evaluation.metrics import mae, qwk
from grader.pipeline.confidence import (
    GRADE_FEATURES,
    ConfidenceModel,
    Tree,
    confidence_value,
    count_reasons,
    features,
    model_reasons,
    pass_mark_reason,
)

if TYPE_CHECKING:
    from grader.evaluation.runner import ItemOutcome
    from grader.evaluation.tune import Candidate, FloatArray, Tuner

DEFAULT_REVIEW_SHARE = 0.2
# Chosen by the question-grouped CV of `grader eval --cv` on Mohler dev and the interview set (stop 17, of
# 60x2/leaf 10, 30x2, 60x1, 150x2/leaf 5 at rate 0.05, 100x3/leaf 5; stop 18, on its signals, 100x3 with leaves
# of 5, 8, 10, 12, 15, 20, 50x3, 60x3/leaf 10, 200x3 at rate 0.05, 300x2, 100x4/leaf 10): depth-3 trees find the
# answers a similarity scorer misreads (paraphrases, fluent wrong answers) that depth 2 misses, and leaves of 10
# answers keep them from fitting single questions; unflagged/all MAE 0.782 (Mohler) and 0.793 (interview) at a
# review share of 0.24. Stop 19, on its signals (accepted phrasings), of leaves 5, 10, 20, depth 2 (leaf 5, 10),
# depth 4, 50, 200 (rate 0.1, 0.05) trees and two extra signals for the trees (dropped: worse): leaves of 20 did
# best on both sets (0.774 Mohler, 0.822 interview; leaf 10: 0.777, 0.840). No shape reached 0.8 on the interview
# set: its 22 manipulation answers take 22 of the ~54 review places at a mean error of 0.46.
TREES = 100
TREE_DEPTH = 3
LEARNING_RATE = 0.1
MIN_LEAF = 20
THRESHOLD_FOLDS = 5
DISAGREEMENT_QUANTILE = 0.9
OFFTOPIC_QUANTILE = 0.01
COVERAGES = (0.5, 0.8, 1.0)


# -- fitting ---------------------------------------------------------------------------------------------
def row_features(item: ItemOutcome, score: float, emb: float | None, judge: float | None, top: float) -> dict[str, float]:
    return features(item.signals, score, emb, judge, item.judge_spread, top)


def fit_confidence(
    feats: Sequence[dict[str, float]],
    final_err: FloatArray,
    emb_err: FloatArray,
    facts: Sequence[bool],
    has_judge: Sequence[bool],
    review_share: float,
    groups: Sequence[str] | None = None,
    provenance: dict[str, Any] | None = None,
    weights: Sequence[float] | None = None,
) -> ConfidenceModel:
    """The confidence model from held-out errors (fractions of max_score); see the module doc.

    `weights` (one per row) balance pooled data sets: the trees, the quantiles and the review share are then
    weighted, so a large source does not set the thresholds for a small one."""
    from grader.evaluation.tune import grouped_folds

    n = len(feats)
    signal_names = sorted(set.intersection(*(set(r) for r in feats)) - set(GRADE_FEATURES)) if n else []
    names = [f for f in [*GRADE_FEATURES, *signal_names] if np.std([r.get(f, 0.0) for r in feats]) > 1e-9]
    x = np.array([[r.get(f, 0.0) for f in names] for r in feats], dtype=np.float64).reshape(n, len(names))
    y = np.asarray(final_err, dtype=np.float64)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    disagreement = _quantile(np.asarray(emb_err, dtype=np.float64), w, DISAGREEMENT_QUANTILE) if n else 1.0
    has_topic = np.array(["topicality" in r for r in feats], dtype=bool)
    topic = np.array([r["topicality"] for r in feats if "topicality" in r], dtype=np.float64)
    offtopic = _quantile(topic, w[has_topic], OFFTOPIC_QUANTILE) if topic.size else -1.0
    model = _boosted(x, y, names, w)
    model = model.model_copy(update={"review_share": review_share, "disagreement": disagreement,
                                     "offtopic": offtopic, "provenance": provenance or {}})
    # Out-of-fold expected errors for the threshold: a tree ensemble is too sure about its own training rows.
    expected = np.array([model.expected_error(r) for r in feats])
    if groups is not None and len(set(groups)) >= 2 and THRESHOLD_FOLDS:
        for test in grouped_folds(groups, THRESHOLD_FOLDS):
            train = np.setdiff1d(np.arange(n), test)
            inner = _boosted(x[train], y[train], names, w[train])
            expected[test] = [inner.expected_error(feats[i]) for i in test]
    gap = np.array([r.get("judge_gap", 0.0) for r in feats])
    topicality = np.array([r.get("topicality", math.inf) for r in feats])
    flagged = np.asarray(facts, dtype=bool) | (np.asarray(has_judge, dtype=bool) & (gap > disagreement))
    flagged |= topicality < offtopic
    model.threshold = _threshold(expected, flagged, review_share, w)
    return model


def _quantile(values: FloatArray, weights: FloatArray, q: float) -> float:
    """The weighted q-quantile; with equal weights numpy's (linear) quantile, as before weights existed."""
    if np.ptp(weights) == 0:
        return float(np.quantile(values, q))
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cum, q * cum[-1])), values.size - 1)])


def _boosted(x: FloatArray, y: FloatArray, names: list[str], w: FloatArray | None = None) -> ConfidenceModel:
    """Gradient-boosted regression trees on |error|, copied out of scikit-learn into plain arrays."""
    from sklearn.ensemble import GradientBoostingRegressor

    base = float(np.average(y, weights=w)) if y.size else 0.0
    trees: list[Tree] = []
    if y.size >= 2 * MIN_LEAF and x.shape[1]:
        gb = GradientBoostingRegressor(n_estimators=TREES, max_depth=TREE_DEPTH, learning_rate=LEARNING_RATE,
                                       min_samples_leaf=MIN_LEAF, random_state=0).fit(x, y, sample_weight=w)
        base = float(gb.init_.constant_.ravel()[0])
        for est in gb.estimators_[:, 0]:
            t = est.tree_
            trees.append(Tree(feature=[int(f) for f in t.feature], threshold=[float(v) for v in t.threshold],
                              left=[int(v) for v in t.children_left], right=[int(v) for v in t.children_right],
                              value=[float(v) for v in t.value.ravel()]))
    return ConfidenceModel(features=names, base=base, learning_rate=LEARNING_RATE, trees=trees, threshold=1.0,
                           review_share=0.0, disagreement=1.0, offtopic=-1.0)


def _threshold(expected: FloatArray, flagged: np.ndarray, share: float, w: FloatArray | None = None) -> float:
    """The expected error above which the remaining answers go to review, so that `share` of all (by weight)
    go."""
    w = np.ones(expected.size) if w is None else w
    total = float(w.sum())
    want = share * total - float(w[flagged].sum())
    order = np.argsort(-expected[~flagged], kind="stable")
    rest, rest_w = expected[~flagged][order], w[~flagged][order]
    if want <= 0.5 * (total / max(expected.size, 1)) or rest.size == 0:
        return float(expected.max()) if expected.size else 1.0
    # the first k answers (most expected error first) whose weight reaches `want`, rounded to the nearest
    k = int(np.searchsorted(np.cumsum(rest_w) - 0.5 * rest_w, want))
    if k >= rest.size:
        return -1.0
    return float(rest[k])


def assess_row(
    model: ConfidenceModel, item: ItemOutcome, score: float, emb: float | None, judge: float | None, top: float,
    settings: ConfidenceSettings | None = None,
) -> tuple[float, list[str]]:
    """(confidence, reason codes) of one eval answer, as the pipeline's assess() computes them."""
    feats = row_features(item, score, emb, judge, top)
    err = model.expected_error(feats)
    codes = list(item.review_facts) + [r.code for r in model_reasons(model, item.signals, emb, judge, err, top)]
    if settings is not None and pass_mark_reason(score, settings) is not None:
        codes.append("pass-mark")
    return confidence_value(err, sum(1 for c in codes if c != "uncertain")), codes


class SelectiveCV(BaseModel):
    embedding: list[float]
    combined: list[float]
    confidence: list[float]
    review: list[list[str]]


def cv_selective(
    tuner: Tuner, cand: Candidate, items: Sequence[ItemOutcome], review_share: float, inner_k: int = 5,
    settings: ConfidenceSettings | None = None,
) -> SelectiveCV:
    """Held-out embedding, final score, confidence and reasons per answer; folds as the tuner's (by question).

    For each held-out question the calibration is refitted on the other questions, and the confidence model is
    fitted on *their* inner out-of-fold residuals, so no figure uses the held-out answers' grades."""
    from grader.evaluation.tune import _predict_fraction, grouped_folds

    n, top = len(items), tuner.top
    emb_out, comb_out, conf_out = np.empty(n), np.empty(n), np.empty(n)
    codes_out: list[list[str]] = [[] for _ in range(n)]
    judge = tuner.judge.get(cand.prompt) if cand.prompt is not None else None
    for test in grouped_folds(tuner.groups, tuner.folds, tuner.seed):
        train = np.setdiff1d(np.arange(n), test)
        emb_tr = tuner._cv_embedding(cand.recipe, train, inner_k)
        comb_tr = tuner.combined(cand, train, emb_tr)
        model = fit_confidence(
            [row_features(items[i], c, e, _j(judge, i), top) for i, c, e in zip(train, comb_tr, emb_tr, strict=True)],
            np.abs(comb_tr - tuner.human[train]) / top,
            np.abs(emb_tr - tuner.human[train]) / top,
            [bool(items[i].review_facts) for i in train],
            [_j(judge, i) is not None for i in train],
            review_share,
            groups=[tuner.groups[i] for i in train],
        )
        emb_te = top * _predict_fraction(tuner.sig, cand.recipe, train, test, tuner.y_frac)
        comb_te = tuner.combined(cand, test, emb_te)
        emb_out[test], comb_out[test] = emb_te, comb_te
        for i, c, e in zip(test, comb_te, emb_te, strict=True):
            conf_out[i], codes_out[i] = assess_row(model, items[i], float(c), float(e), _j(judge, i), top, settings)
    return SelectiveCV(embedding=emb_out.tolist(), combined=comb_out.tolist(), confidence=conf_out.tolist(),
                       review=codes_out)


def _j(judge: FloatArray | None, i: int) -> float | None:
    if judge is None or math.isnan(judge[i]):
        return None
    return float(judge[i])


# -- measuring -------------------------------------------------------------------------------------------
class CoverageRow(BaseModel):
    coverage: float = Field(description="Share of answers kept, most confident first.")
    n: int
    qwk: float | None
    mae: float


class Selective(BaseModel):
    """Risk against coverage for one run, and what the review flags buy."""

    n: int
    rows: list[CoverageRow]
    flagged: int
    share_flagged: float
    mae_all: float
    mae_flagged: float | None
    mae_unflagged: float | None
    reasons: dict[str, int] = Field(default_factory=dict)
    curve: list[tuple[float, float]] = Field(default_factory=list, description="(coverage, MAE) for the plot.")

    @property
    def ratio(self) -> float | None:
        """MAE of the unflagged answers over the MAE of all (below 1: the flags catch the big errors)."""
        if self.mae_unflagged is None or self.mae_all <= 0:
            return None
        return self.mae_unflagged / self.mae_all


def risk_coverage(
    human: Sequence[float], grader: Sequence[float], confidence: Sequence[float], review: Sequence[Sequence[str]],
    max_score: float, coverages: Sequence[float] = COVERAGES,
) -> Selective | None:
    """The risk-coverage table: agreement on the most confident shares, and flagged versus unflagged error."""
    n = len(human)
    if n == 0:
        return None
    h, g, c = (np.asarray(v, dtype=np.float64) for v in (human, grader, confidence))
    order = np.argsort(-c, kind="stable")
    rows = []
    for cov in coverages:
        k = max(1, math.ceil(cov * n))
        keep = order[:k]
        q = qwk(h[keep], g[keep], max_score)
        rows.append(CoverageRow(coverage=cov, n=k, qwk=q if math.isfinite(q) else None, mae=mae(h[keep], g[keep])))
    flagged = np.array([bool(r) for r in review])
    err = np.abs(h - g)
    curve = [(round(k / n, 4), float(err[order[:k]].mean())) for k in sorted({max(1, round(n * s / 20)) for s in range(1, 21)})]
    return Selective(
        n=n, rows=rows, flagged=int(flagged.sum()), share_flagged=float(flagged.mean()), mae_all=float(err.mean()),
        mae_flagged=float(err[flagged].mean()) if flagged.any() else None,
        mae_unflagged=float(err[~flagged].mean()) if (~flagged).any() else None,
        reasons=count_reasons(review), curve=curve,
    )


def selective_of_items(items: Sequence[ItemOutcome], max_score: float) -> Selective | None:
    scored = [it for it in items if it.combined is not None and it.confidence is not None]
    return risk_coverage([it.human for it in scored], [it.combined for it in scored],  # type: ignore[misc]
                         [it.confidence for it in scored], [it.review for it in scored], max_score)  # type: ignore[misc]


def render_selective(label: str, s: Selective, max_score: float) -> str:
    """The table `grader eval` prints under the agreement figures."""
    from grader.evaluation.report import text_table

    header = ["most confident", "n", "QWK", "MAE"]
    body = [[f"{r.coverage:.0%}", str(r.n), "–" if r.qwk is None else f"{r.qwk:.3f}", f"{r.mae:.3f}"] for r in s.rows]
    lines = [f"selective grading — {label}: risk against coverage (answers ranked by confidence)",
             text_table(header, body)]
    flag = f"flagged for review: {s.flagged} of {s.n} ({s.share_flagged:.0%})"
    if s.mae_flagged is not None and s.mae_unflagged is not None:
        flag += (f"; MAE flagged {s.mae_flagged:.3f} vs unflagged {s.mae_unflagged:.3f} (all {s.mae_all:.3f}; "
                 f"unflagged/all = {s.ratio:.3f})")
    lines.append(flag)
    if s.reasons:
        lines.append("reasons: " + ", ".join(f"{k} {v}" for k, v in s.reasons.items()))
    return "\n".join(lines)


def in_sample_note(dataset: Path, model_path: Path | None) -> str | None:
    """A note when the confidence model was fitted on this very file: its review flags are then in-sample."""
    from grader.embedding.calibration import provenance_shas, sha256_file
    from grader.pipeline.confidence import load_model

    shas = provenance_shas(load_model(str(model_path) if model_path is not None else None).provenance)
    if not shas or not dataset.is_file() or sha256_file(dataset) not in shas:
        return None
    pooled = " (pooled with other sets)" if len(shas) > 1 else ""
    return (f"the confidence model was fitted on this very data set{pooled}, so the in-sample selective-grading "
            "figures overstate what the review flags catch; the '(CV)' run (--cv) refits it per held-out question.")
