"""Percentile bootstrap intervals for the agreement metrics, and paired differences between two graders.

Resampling unit: by default the **question** (a cluster bootstrap). Answers to the same question share a
reference, a rubric and usually a grading style, so they are not independent; resampling single answers would
treat 1,074 Mohler answers as 1,074 independent pieces of evidence when there are only 37 questions, and the
intervals would come out too narrow. Resampling whole questions keeps that correlation inside every resample.
``unit="item"`` gives the ordinary item bootstrap for sets without question ids.

A resample is a vector of draw counts per item, and every metric takes those counts as weights, so resampling
costs no copying. The RNG is seeded: the same inputs and seed give the same intervals.

A paired comparison applies the *same* resample to both graders and takes the percentile interval of the
difference; a change is called better (or worse) only when that interval excludes zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel

from grader.evaluation.metrics import LOWER_IS_BETTER, METRIC_NAMES, PairSigns, all_metrics

Unit = Literal["question", "item"]
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20261126


class Interval(BaseModel):
    value: float
    low: float
    high: float


class Difference(BaseModel):
    """metric(B) - metric(A) with its paired interval, and what it means."""

    diff: float
    low: float
    high: float
    verdict: Literal["better", "worse", "no clear difference"]


def resample_weights(
    groups: Sequence[str] | None, n_items: int, n_resamples: int, seed: int, unit: Unit = "question"
) -> NDArray[np.float64]:
    """An (n_resamples, n_items) matrix of draw counts."""
    rng = np.random.default_rng(seed)
    if unit == "item" or groups is None:
        draws = rng.integers(0, n_items, size=(n_resamples, n_items))
        return np.stack([np.bincount(d, minlength=n_items) for d in draws]).astype(np.float64)
    labels, inverse = np.unique(np.asarray(list(groups), dtype=object).astype(str), return_inverse=True)
    k = labels.size
    draws = rng.integers(0, k, size=(n_resamples, k))
    cluster_counts = np.stack([np.bincount(d, minlength=k) for d in draws]).astype(np.float64)
    return cluster_counts[:, inverse]


def _one_blas_thread() -> AbstractContextManager[object]:
    """Thousands of small mat-vec products: BLAS threads only add contention on a shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional nicety: sklearn installs it
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _percentile(values: list[float], level: float) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(arr, [tail, 100.0 - tail])
    return float(lo), float(hi)


def bootstrap_metrics(
    human: ArrayLike,
    grader: ArrayLike,
    max_score: float,
    groups: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
    unit: Unit = "question",
) -> dict[str, Interval]:
    """Point value and percentile interval of every metric."""
    h = np.asarray(human, dtype=np.float64)
    g = np.asarray(grader, dtype=np.float64)
    signs = PairSigns(h, g)
    point = all_metrics(h, g, max_score, pair_signs=signs)
    samples: dict[str, list[float]] = {m: [] for m in METRIC_NAMES}
    if n_resamples > 0 and h.size > 1:
        with _one_blas_thread():
            for w in resample_weights(groups, h.size, n_resamples, seed, unit):
                for name, v in all_metrics(h, g, max_score, weights=w, pair_signs=signs).items():
                    samples[name].append(v)
    out: dict[str, Interval] = {}
    for name in METRIC_NAMES:
        lo, hi = _percentile(samples[name], level)
        out[name] = Interval(value=point[name], low=lo, high=hi)
    return out


def paired_difference(
    human: ArrayLike,
    grader_a: ArrayLike,
    grader_b: ArrayLike,
    max_score: float,
    groups: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = 0.95,
    unit: Unit = "question",
) -> dict[str, Difference]:
    """metric(B) - metric(A) per metric, each resample shared by A and B."""
    h = np.asarray(human, dtype=np.float64)
    a = np.asarray(grader_a, dtype=np.float64)
    b = np.asarray(grader_b, dtype=np.float64)
    sa, sb = PairSigns(h, a), PairSigns(h, b)
    pa = all_metrics(h, a, max_score, pair_signs=sa)
    pb = all_metrics(h, b, max_score, pair_signs=sb)
    samples: dict[str, list[float]] = {m: [] for m in METRIC_NAMES}
    if n_resamples > 0 and h.size > 1:
        with _one_blas_thread():
            for w in resample_weights(groups, h.size, n_resamples, seed, unit):
                ma = all_metrics(h, a, max_score, weights=w, pair_signs=sa)
                mb = all_metrics(h, b, max_score, weights=w, pair_signs=sb)
                for name in METRIC_NAMES:
                    samples[name].append(mb[name] - ma[name])
    out: dict[str, Difference] = {}
    for name in METRIC_NAMES:
        lo, hi = _percentile(samples[name], level)
        out[name] = Difference(diff=pb[name] - pa[name], low=lo, high=hi, verdict=verdict(name, lo, hi))
    return out


def verdict(metric: str, low: float, high: float) -> Literal["better", "worse", "no clear difference"]:
    """B is better only when the whole interval of B - A lies on the good side of zero."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no clear difference"
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    lo, hi = sorted((sign * low, sign * high))
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no clear difference"
