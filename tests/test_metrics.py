"""The metrics agree with scikit-learn and scipy on known cases, to 1e-9."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix, mean_absolute_error, mean_squared_error

from grader.evaluation import metrics as M

TOL = 1e-9


def _cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    human = rng.integers(0, 6, size=200).astype(float) / 1.0
    halves = rng.integers(0, 11, size=150) / 2.0
    noisy = np.clip(halves + rng.normal(0, 0.8, size=150), 0, 5)
    return [
        ("int-vs-int", human, np.clip(human + rng.integers(-1, 2, size=200), 0, 5)),
        ("halves-vs-continuous", halves, noisy),
        ("many-ties", np.array([0, 0, 1, 1, 2, 2, 5, 5, 5, 3.0]), np.array([0, 1, 1, 1, 2, 4, 5, 4, 5, 3.0])),
        ("negative", np.arange(12, dtype=float) % 6, 5 - (np.arange(12, dtype=float) % 6) * 0.9),
    ]


@pytest.mark.parametrize(("name", "h", "g"), _cases())
def test_correlations_match_scipy(name: str, h: np.ndarray, g: np.ndarray) -> None:
    assert M.pearson(h, g) == pytest.approx(stats.pearsonr(h, g).statistic, abs=TOL)
    assert M.spearman(h, g) == pytest.approx(stats.spearmanr(h, g).statistic, abs=TOL)
    assert M.kendall(h, g) == pytest.approx(stats.kendalltau(h, g).statistic, abs=TOL)
    assert M.PairSigns(h, g).tau_b() == pytest.approx(stats.kendalltau(h, g).statistic, abs=1e-6)


@pytest.mark.parametrize(("name", "h", "g"), _cases())
def test_errors_and_kappa_match_sklearn(name: str, h: np.ndarray, g: np.ndarray) -> None:
    assert M.mae(h, g) == pytest.approx(mean_absolute_error(h, g), abs=TOL)
    assert M.rmse(h, g) == pytest.approx(math.sqrt(mean_squared_error(h, g)), abs=TOL)
    hi, gi = M.round_half_up(h, 5), M.round_half_up(g, 5)
    labels = list(range(6))
    expected = cohen_kappa_score(hi, gi, weights="quadratic", labels=labels)
    assert M.qwk(h, g, 5) == pytest.approx(expected, abs=TOL)
    assert np.array_equal(M.confusion_matrix(h, g, 5), confusion_matrix(hi, gi, labels=labels))
    assert M.exact_agreement(h, g, 5) == pytest.approx(float(np.mean(hi == gi)), abs=TOL)
    assert M.within_one(h, g, 5) == pytest.approx(float(np.mean(np.abs(hi - gi) <= 1)), abs=TOL)


def test_mohler_human_human_matches_libraries(mohler_dev_path) -> None:
    rows = [json.loads(line) for line in mohler_dev_path.read_text().splitlines() if line.strip()]
    a = np.array([r["score_a"] for r in rows], dtype=float)
    b = np.array([r["score_b"] for r in rows], dtype=float)
    assert M.qwk(a, b, 5) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=range(6)), abs=TOL)
    assert M.pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=TOL)
    assert M.kendall(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=TOL)


def test_round_half_up_is_documented_rule() -> None:
    got = M.round_half_up([0.49, 0.5, 2.5, 3.5, 4.49, 5.2, -0.3], 5).tolist()
    assert got == [0, 1, 3, 4, 4, 5, 0]
    # Float noise from averaging two grades must not flip a half: (4 + 5) / 2 computed inexactly still rounds up.
    assert M.round_half_up([4.4999999999999], 5).tolist() == [5]


def test_qwk_identical_is_one_and_shuffled_is_about_zero() -> None:
    rng = np.random.default_rng(1)
    h = rng.integers(0, 6, size=2000).astype(float)
    assert M.qwk(h, h, 5) == pytest.approx(1.0, abs=TOL)
    shuffled = [M.qwk(h, rng.permutation(h), 5) for _ in range(20)]
    assert abs(float(np.mean(shuffled))) < 0.02
    assert max(abs(s) for s in shuffled) < 0.1


def test_qwk_scale_includes_unused_middle_grades() -> None:
    # Grades 2 and 3 never occur; on the 0..5 scale 1 vs 4 is three steps apart, not one.
    h = np.array([0, 1, 4, 5, 1, 4.0])
    g = np.array([0, 4, 1, 5, 1, 4.0])
    assert M.qwk(h, g, 5) == pytest.approx(cohen_kappa_score(h, g, weights="quadratic", labels=range(6)), abs=TOL)
    assert M.qwk(h, g, 5) != pytest.approx(cohen_kappa_score(h, g, weights="quadratic"), abs=1e-3)


def test_weights_equal_resampling() -> None:
    rng = np.random.default_rng(3)
    h = rng.integers(0, 11, size=60) / 2.0
    g = np.clip(h + rng.normal(0, 1, size=60), 0, 5)
    idx = rng.integers(0, 60, size=60)
    w = np.bincount(idx, minlength=60)
    signs = M.PairSigns(h, g)
    got = M.all_metrics(h, g, 5, weights=w, pair_signs=signs)
    want = M.all_metrics(h[idx], g[idx], 5)
    for name in M.METRIC_NAMES:
        assert got[name] == pytest.approx(want[name], abs=1e-6), name
    assert want["kendall"] == pytest.approx(stats.kendalltau(h[idx], g[idx]).statistic, abs=TOL)
    assert want["spearman"] == pytest.approx(stats.spearmanr(h[idx], g[idx]).statistic, abs=TOL)


def test_undefined_figures_are_nan_not_zero() -> None:
    h = np.array([3.0, 3.0, 3.0])
    g = np.array([1.0, 2.0, 4.0])
    assert math.isnan(M.pearson(h, g))
    assert math.isnan(M.spearman(h, g))
    assert math.isnan(M.kendall(h, g))
    assert math.isnan(M.qwk(h, h, 5))
    assert M.finite_or_none(M.pearson(h, g)) is None


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="length"):
        M.mae([1, 2], [1, 2, 3])
