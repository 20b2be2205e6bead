"""Bootstrap intervals and paired differences: reproducible, honest about clustering and about ties."""

from __future__ import annotations

import numpy as np
import pytest

from grader.evaluation.bootstrap import bootstrap_metrics, paired_difference, resample_weights, verdict


def _clustered(seed: int = 0, questions: int = 20, per: int = 30) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 6, size=questions * per).astype(float)
    # Each question shifts the grader by its own offset: answers within a question are not independent.
    offsets = np.repeat(rng.normal(0, 1.0, size=questions), per)
    grader = np.clip(human + offsets + rng.normal(0, 0.3, size=human.size), 0, 5)
    groups = [f"q{i // per}" for i in range(human.size)]
    return human, grader, groups


def test_seeded_and_reproducible() -> None:
    h, g, q = _clustered()
    a = bootstrap_metrics(h, g, 5, q, n_resamples=200, seed=5)
    b = bootstrap_metrics(h, g, 5, q, n_resamples=200, seed=5)
    c = bootstrap_metrics(h, g, 5, q, n_resamples=200, seed=6)
    assert a == b
    assert a["qwk"].low != c["qwk"].low
    for iv in a.values():
        assert iv.low <= iv.value <= iv.high


def test_cluster_bootstrap_is_wider_than_item_bootstrap_on_clustered_data() -> None:
    h, g, q = _clustered()
    by_q = bootstrap_metrics(h, g, 5, q, n_resamples=300, unit="question")
    by_item = bootstrap_metrics(h, g, 5, q, n_resamples=300, unit="item")
    for name in ("mae", "qwk", "pearson"):
        wq = by_q[name].high - by_q[name].low
        wi = by_item[name].high - by_item[name].low
        assert wq > 1.5 * wi, name


def test_question_resample_keeps_questions_whole() -> None:
    groups = ["a", "a", "b", "b", "b", "c"]
    w = resample_weights(groups, 6, 50, seed=1)
    assert w.shape == (50, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 2] == w[:, 3]) and np.all(w[:, 3] == w[:, 4])
    # Three questions drawn per resample.
    assert np.all(w[:, 0] + w[:, 2] + w[:, 5] == 3)


def test_paired_difference_identical_graders_is_zero() -> None:
    h, g, q = _clustered()
    d = paired_difference(h, g, g.copy(), 5, q, n_resamples=100)
    for diff in d.values():
        assert diff.diff == 0 and diff.low == 0 and diff.high == 0
        assert diff.verdict == "no clear difference"


def test_paired_difference_calls_a_real_improvement_better() -> None:
    rng = np.random.default_rng(2)
    h = rng.integers(0, 6, size=400).astype(float)
    q = [f"q{i % 40}" for i in range(400)]
    worse = np.clip(h + rng.normal(0, 1.6, size=400), 0, 5)
    better = np.clip(h + rng.normal(0, 0.4, size=400), 0, 5)
    d = paired_difference(h, worse, better, 5, q, n_resamples=300)
    assert d["qwk"].verdict == "better" and d["qwk"].diff > 0
    assert d["mae"].verdict == "better" and d["mae"].diff < 0
    back = paired_difference(h, better, worse, 5, q, n_resamples=300)
    assert back["qwk"].verdict == "worse" and back["mae"].verdict == "worse"


def test_paired_difference_noise_is_not_called_better() -> None:
    rng = np.random.default_rng(4)
    h = rng.integers(0, 6, size=300).astype(float)
    q = [f"q{i % 30}" for i in range(300)]
    a = np.clip(h + rng.normal(0, 1.0, size=300), 0, 5)
    b = np.clip(h + rng.normal(0, 1.0, size=300), 0, 5)
    d = paired_difference(h, a, b, 5, q, n_resamples=300)
    assert d["qwk"].verdict == "no clear difference"
    assert d["qwk"].low < 0 < d["qwk"].high


@pytest.mark.parametrize(
    ("metric", "low", "high", "expected"),
    [
        ("qwk", 0.01, 0.05, "better"),
        ("qwk", -0.05, -0.01, "worse"),
        ("qwk", -0.01, 0.05, "no clear difference"),
        ("mae", -0.2, -0.1, "better"),
        ("mae", 0.1, 0.2, "worse"),
        ("qwk", float("nan"), 0.1, "no clear difference"),
    ],
)
def test_verdict(metric: str, low: float, high: float, expected: str) -> None:
    assert verdict(metric, low, high) == expected
