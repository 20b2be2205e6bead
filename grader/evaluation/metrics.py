"""Agreement metrics between human grades and grader scores: pure functions on numpy arrays.

Conventions (documented here because they change the numbers):

- **Continuous metrics** (Pearson, Spearman, Kendall tau-b, MAE, RMSE) use the scores as they are.
- **Integer metrics** (quadratic weighted kappa, exact and within-one agreement, the confusion matrix) first map
  both sides to whole points on the 0..max_score scale with *round half up* (``floor(x + 0.5)``, then clipped to
  the scale): a Mohler mean grade of 3.5 becomes 4, a grader score of 2.49 becomes 2. Python's own ``round``
  rounds half to even (2.5 -> 2) and is deliberately not used.
- QWK's weight matrix spans the whole scale 0..max_score, not only the labels that happen to occur, so a missing
  middle grade does not change the distances between the others. (scikit-learn's ``cohen_kappa_score`` agrees when
  given ``labels=range(max_score + 1)``.)
- Every function accepts optional non-negative integer ``weights`` (how many times each item counts); a bootstrap
  resample is exactly a weight vector of draw counts, so the same code computes the point figure and every
  resample.
- A figure that is undefined (a correlation when one side is constant, kappa when both sides only use one grade)
  is ``nan``, never a silent 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

METRIC_NAMES: tuple[str, ...] = ("pearson", "spearman", "kendall", "qwk", "mae", "rmse", "exact", "within1")
# Lower is better for these; higher for the rest.
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "rmse"})


def _arrays(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"length mismatch: {x.size} vs {y.size}")
    if weights is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != x.shape:
            raise ValueError("weights must have one entry per item")
        if np.any(w < 0):
            raise ValueError("weights must be non-negative")
    return x, y, w


def round_half_up(scores: ArrayLike, max_score: float) -> NDArray[np.int64]:
    """Whole points on 0..max_score, halves rounded up (3.5 -> 4, 2.5 -> 3)."""
    s = np.asarray(scores, dtype=np.float64)
    # The epsilon keeps 2.4999999999 (float noise from averaging) from rounding differently than 2.5 would.
    return np.clip(np.floor(s + 0.5 + 1e-9), 0, math.floor(max_score + 1e-9)).astype(np.int64)


def pearson(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    x, y, w = _arrays(a, b, weights)
    total = w.sum()
    if total <= 1:
        return math.nan
    dx = x - (w @ x) / total
    dy = y - (w @ y) / total
    sxx, syy = w @ (dx * dx), w @ (dy * dy)
    if sxx <= 0 or syy <= 0:
        return math.nan
    r = float((w @ (dx * dy)) / math.sqrt(sxx * syy))
    return max(-1.0, min(1.0, r))


def _midranks(v: FloatArray, w: FloatArray) -> FloatArray:
    """Average ranks (1-based) of v in the multiset where item i occurs w[i] times."""
    order = np.argsort(v, kind="mergesort")
    sv, sw = v[order], w[order]
    uniq, start = np.unique(sv, return_index=True)
    group_w = np.add.reduceat(sw, start) if sv.size else sw
    below = np.concatenate(([0.0], np.cumsum(group_w)[:-1]))
    group_rank = below + (group_w + 1.0) / 2.0
    idx = np.searchsorted(uniq, v)
    return group_rank[idx]


def spearman(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Pearson correlation of mid-ranks (ties share their average rank), as scipy.stats.spearmanr."""
    x, y, w = _arrays(a, b, weights)
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    return pearson(_midranks(x, w), _midranks(y, w), w)


class PairSigns:
    """Pairwise sign products for Kendall's tau-b, computed once and reused by every bootstrap resample.

    Memory is n*n*3 float32 values (about 14 MB for n = 1,074).
    """

    def __init__(self, a: ArrayLike, b: ArrayLike) -> None:
        x = np.asarray(a, dtype=np.float64).ravel()
        y = np.asarray(b, dtype=np.float64).ravel()
        sx = np.sign(x[:, None] - x[None, :]).astype(np.float32)
        sy = np.sign(y[:, None] - y[None, :]).astype(np.float32)
        self.concord = sx * sy  # +1 concordant, -1 discordant, 0 tied on either side
        self.untied_x = np.abs(sx)
        self.untied_y = np.abs(sy)

    def tau_b(self, weights: ArrayLike | None = None) -> float:
        n = self.concord.shape[0]
        w = np.ones(n, dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        # A pair of copies of the same item has sign 0 on both sides: a tie in x and y, excluded from tau-b as
        # scipy excludes it, so weighting by draw counts equals resampling.
        s = float(w @ (self.concord @ w))
        nx = float(w @ (self.untied_x @ w))
        ny = float(w @ (self.untied_y @ w))
        if nx <= 0 or ny <= 0:
            return math.nan
        return max(-1.0, min(1.0, s / math.sqrt(nx * ny)))


def kendall(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Kendall's tau-b (ties adjusted), as scipy.stats.kendalltau's default."""
    x, y, w = _arrays(a, b, weights)
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    s = nx = ny = 0.0
    # Row blocks keep memory bounded for large sets; exact float64 arithmetic.
    block = max(1, 2_000_000 // max(1, x.size))
    for i in range(0, x.size, block):
        sx = np.sign(x[i : i + block, None] - x[None, :])
        sy = np.sign(y[i : i + block, None] - y[None, :])
        wb = w[i : i + block]
        s += float(wb @ ((sx * sy) @ w))
        nx += float(wb @ (np.abs(sx) @ w))
        ny += float(wb @ (np.abs(sy) @ w))
    if nx <= 0 or ny <= 0:
        return math.nan
    return max(-1.0, min(1.0, s / math.sqrt(nx * ny)))


def mae(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    x, y, w = _arrays(a, b, weights)
    total = w.sum()
    return float(w @ np.abs(x - y) / total) if total > 0 else math.nan


def rmse(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    x, y, w = _arrays(a, b, weights)
    total = w.sum()
    return float(math.sqrt(w @ ((x - y) ** 2) / total)) if total > 0 else math.nan


def confusion_matrix(
    human: ArrayLike, grader: ArrayLike, max_score: float, weights: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Counts of (human grade row, grader grade column) on the rounded 0..max_score scale."""
    x, y, w = _arrays(human, grader, weights)
    k = math.floor(max_score + 1e-9) + 1
    hi, gi = round_half_up(x, max_score), round_half_up(y, max_score)
    m = np.zeros((k, k), dtype=np.float64)
    np.add.at(m, (hi, gi), w)
    return m


def qwk(human: ArrayLike, grader: ArrayLike, max_score: float, weights: ArrayLike | None = None) -> float:
    """Quadratic weighted kappa on whole points 0..max_score (round half up)."""
    m = confusion_matrix(human, grader, max_score, weights)
    total = m.sum()
    if total <= 0:
        return math.nan
    k = m.shape[0]
    idx = np.arange(k, dtype=np.float64)
    dist = (idx[:, None] - idx[None, :]) ** 2
    expected = np.outer(m.sum(axis=1), m.sum(axis=0)) / total
    denom = float((dist * expected).sum())
    if denom <= 0:
        return math.nan
    return 1.0 - float((dist * m).sum()) / denom


def exact_agreement(human: ArrayLike, grader: ArrayLike, max_score: float, weights: ArrayLike | None = None) -> float:
    x, y, w = _arrays(human, grader, weights)
    same = round_half_up(x, max_score) == round_half_up(y, max_score)
    return float(w @ same / w.sum()) if w.sum() > 0 else math.nan


def within_one(human: ArrayLike, grader: ArrayLike, max_score: float, weights: ArrayLike | None = None) -> float:
    x, y, w = _arrays(human, grader, weights)
    close = np.abs(round_half_up(x, max_score) - round_half_up(y, max_score)) <= 1
    return float(w @ close / w.sum()) if w.sum() > 0 else math.nan


def all_metrics(
    human: ArrayLike,
    grader: ArrayLike,
    max_score: float,
    weights: ArrayLike | None = None,
    pair_signs: PairSigns | None = None,
) -> dict[str, float]:
    """Every metric in METRIC_NAMES; pass ``pair_signs`` to reuse Kendall's pair matrix across resamples."""
    tau = pair_signs.tau_b(weights) if pair_signs is not None else kendall(human, grader, weights)
    return {
        "pearson": pearson(human, grader, weights),
        "spearman": spearman(human, grader, weights),
        "kendall": tau,
        "qwk": qwk(human, grader, max_score, weights),
        "mae": mae(human, grader, weights),
        "rmse": rmse(human, grader, weights),
        "exact": exact_agreement(human, grader, max_score, weights),
        "within1": within_one(human, grader, max_score, weights),
    }


def finite_or_none(value: float) -> float | None:
    """For JSON: nan becomes null rather than an invalid token."""
    return None if value is None or not math.isfinite(value) else float(value)
