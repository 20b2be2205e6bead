"""`grader tune`: fit the calibration, the combination weights and the judge prompt by question-grouped CV.

What is fitted, and how it is measured honestly:

- **Candidates.** A calibration *recipe* (which signals, ridge strength alpha; the gate and coverage map are
  kept from the base calibration), and, when judge scores exist, a judge prompt and the embedding/judge weight
  (embedding weight 0, 0.1, ..., 1; judge weight = 1 - it). The base configuration is always a candidate.
- **Selection.** A candidate is chosen by inner question-grouped CV agreement (default metric: QWK) on the
  training questions only.
- **The reported figure is nested CV.** Outer folds hold out whole questions (default: leave one question out);
  in each, the selection above runs on the remaining questions, the chosen recipe is refitted on them, and the
  held-out answers are predicted. The figure therefore includes the cost of choosing, and is comparable with the
  default's figure, which is the same outer CV of the base recipe with no choosing. The paired bootstrap
  difference (resampling questions) says whether the tuned procedure is really better.
- **Adopted only when better.** If the paired interval of (tuned - default) on the selection metric does not lie
  above zero, the change is not adopted and the config keeps the default recipe, prompt and weights: a tuning run
  never makes things worse by noise.
- **The written config** holds the adopted candidate, its calibration refitted on all rows (saved as JSON beside
  the config, with provenance), the combination weights and the judge prompt. Its in-sample figure is not reported
  as the result: `grader eval` on the same set flags it as in-sample.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from grader.evaluation.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Difference,
    Interval,
    bootstrap_metrics,
    paired_difference,
)
from grader.evaluation.metrics import (
    LOWER_IS_BETTER,
    METRIC_NAMES,
    exact_agreement,
    mae,
    pearson,
    qwk,
    rmse,
    spearman,
    within_one,
)

WEIGHT_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
# How far the embedding may move a judged score (fraction of max_score, times the open share): 0 = judge alone,
# 1 = the plain weighted mean. See grader/pipeline/combine.py.
BAND_GRID: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)
ALPHA_GRID: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)
EXTRA_FEATURE_SETS: tuple[tuple[str, ...], ...] = (
    ("cos_ref_qd", "crit_recall_qd"),
    ("cos_ref_qd", "crit_recall_qd", "cos_ref_qd^2", "crit_recall_qd^2", "lex_recall_qd", "tok_recall_qd"),
    ("cos_ref_qd", "crit_recall_qd", "cos_ref_qd^2", "crit_recall_qd^2", "coverage_qd", "log_len_ratio"),
    ("cos_ref", "cos_ref_qd", "crit_recall_qd", "coverage_qd", "lex_recall_qd", "tok_recall_qd", "log_len_ratio",
     "cos_ref_qd^2", "crit_recall_qd^2"),
)
SELECTION_METRICS = ("qwk", "pearson", "spearman", "mae", "rmse", "exact", "within1")
_METRIC_FN = {
    "pearson": lambda h, g, m: pearson(h, g),
    "spearman": lambda h, g, m: spearman(h, g),
    "qwk": qwk,
    "mae": lambda h, g, m: mae(h, g),
    "rmse": lambda h, g, m: rmse(h, g),
    "exact": exact_agreement,
    "within1": within_one,
}

FloatArray = NDArray[np.float64]


class Recipe(BaseModel, frozen=True):
    features: tuple[str, ...]
    alpha: float

    def describe(self) -> str:
        return f"alpha {self.alpha:g}, features {', '.join(self.features)}"


class Candidate(BaseModel, frozen=True):
    recipe: Recipe
    prompt: str | None = None
    embedding_weight: float = 1.0
    band: float = 1.0

    @property
    def judge_weight(self) -> float:
        return round(1.0 - self.embedding_weight, 6) if self.prompt is not None else 0.0

    def describe(self) -> str:
        s = self.recipe.describe()
        if self.prompt is not None:
            s += (f"; prompt {self.prompt}; weights embedding {self.embedding_weight:g} / judge {self.judge_weight:g}"
                  f", band {self.band:g}")
        return s


class TuneInputs(BaseModel):
    """Everything tuning needs, per answer: signals, human grade, question, scale, judge score per prompt."""

    model_config = {"arbitrary_types_allowed": True}

    signals: list[dict[str, float]]
    human: list[float]
    groups: list[str]
    max_score: float
    judge: dict[str, list[float | None]] = Field(default_factory=dict, description="prompt -> score per answer")
    judge_open: dict[str, list[float | None]] = Field(
        default_factory=dict, description="prompt -> share of key points the judge left open (1 when unknown)"
    )


class TuneResult(BaseModel):
    metric: str
    scheme: str
    n: int
    n_questions: int
    base: Candidate
    chosen: Candidate
    default_cv: dict[str, Interval]
    tuned_cv: dict[str, Interval]
    difference: dict[str, Difference]
    adopted: bool = Field(description="True when the tuned procedure beat the default by nested CV (paired interval).")
    written: Candidate = Field(description="What the config holds: the chosen candidate if adopted, else the base.")
    written_cv: dict[str, Interval] = Field(description="The cross-validated figure of what the config holds.")
    chosen_cv_optimistic: dict[str, float] = Field(
        description="Plain CV of the finally chosen candidate (selected on the same folds, so optimistic)."
    )
    fold_choices: dict[str, int] = Field(description="How often each candidate was chosen across outer folds.")
    judge_only: dict[str, dict[str, Interval]] = Field(default_factory=dict)
    n_candidates: int


# -- folds -----------------------------------------------------------------------------------------
def grouped_folds(groups: Sequence[str], k: int | None, seed: int = DEFAULT_SEED) -> list[NDArray[np.int64]]:
    """Held-out index arrays; each question's answers stay together. k None or 0: leave one question out."""
    labels = sorted(set(groups))
    if k is None or k <= 0 or k >= len(labels):
        assign = {g: i for i, g in enumerate(labels)}
        k = len(labels)
    else:
        order = np.random.default_rng(seed).permutation(len(labels))
        assign = {labels[j]: pos % k for pos, j in enumerate(order)}
    fold_of = np.array([assign[g] for g in groups])
    return [np.flatnonzero(fold_of == f) for f in range(k) if np.any(fold_of == f)]


# -- the calibration recipe, vectorised -------------------------------------------------------------
class _Signals:
    """Feature matrices per feature set and the gate factor per answer, computed once."""

    def __init__(self, signals: list[dict[str, float]], base: object, stretch: float) -> None:
        from grader.embedding.calibration import feature_matrix

        self._signals = signals
        self._matrices: dict[tuple[str, ...], FloatArray] = {}
        self._feature_matrix = feature_matrix
        # The base calibration's gates and cap stay as they are; only the ridge part is refitted.
        gate_factor = getattr(base, "gate_factor", None)
        limit = getattr(base, "limit", None)
        self.gate = np.array([gate_factor(s) if gate_factor else 1.0 for s in signals], dtype=np.float64)
        self.cap = np.array([limit(s) if limit else 1.0 for s in signals], dtype=np.float64)
        cap = getattr(base, "cap", None)
        # With a cap, its margin is refitted with the ridge on every training split (see fit_cap_margin).
        self.cap_signal = (np.array([s.get(cap.signal, 0.0) for s in signals], dtype=np.float64)
                           if cap is not None else None)
        self.cap_slope = cap.slope if cap is not None else 1.0
        self.clip = tuple(getattr(base, "clip", (0.0, 1.0)))
        self.stretch = stretch

    def available(self, features: Sequence[str]) -> bool:
        names = self._signals[0].keys() if self._signals else ()
        return all(f.removesuffix("^2") in names for f in features)

    def matrix(self, features: tuple[str, ...]) -> FloatArray:
        if features not in self._matrices:
            self._matrices[features] = self._feature_matrix(self._signals, features)
        return self._matrices[features]


def _ridge(x: FloatArray, y: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Standardised ridge with intercept, closed form (the same model sklearn's Ridge fits)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    ybar = float(y.mean())
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - ybar))
    return mean, scale, coef, ybar


def _predict_fraction(
    sig: _Signals, recipe: Recipe, train: NDArray[np.int64], test: NDArray[np.int64], y_frac: FloatArray
) -> FloatArray:
    from grader.embedding.calibration import PASSING, ridge_share

    x = sig.matrix(recipe.features)
    # As the calibration is fitted: the ridge learns from answers the gates pass; the gates handle the rest.
    train = train[sig.gate[train] >= PASSING]
    mean, scale, coef, b = _ridge(x[train], y_frac[train], recipe.alpha)
    pred = ridge_share(x[test], mean, scale, coef, b, sig.stretch, sig.clip) * sig.gate[test]
    if sig.cap_signal is None:
        return np.clip(np.minimum(pred, sig.cap[test]), 0.0, 1.0)
    from grader.embedding.calibration import fit_cap_margin

    # The margin is chosen on the training rows' own (in-sample) predictions: one number, cheap to refit.
    fitted = ridge_share(x[train], mean, scale, coef, b, sig.stretch, sig.clip) * sig.gate[train]
    margin = fit_cap_margin(fitted, sig.cap_signal[train], y_frac[train], slope=sig.cap_slope)
    return np.clip(np.minimum(pred, sig.cap_slope * sig.cap_signal[test] + margin), 0.0, 1.0)


def _mix(
    emb: FloatArray, judge: FloatArray | None, w: float, top: float, band: float = 1.0, open_: FloatArray | None = None
) -> FloatArray:
    """As the pipeline combines (combine.judge_led); where the judge gave no score, the embedding score alone."""
    if judge is None:
        return emb
    from grader.pipeline.combine import judge_led

    share = np.ones_like(emb) if open_ is None else open_
    led = judge_led(np.nan_to_num(judge), emb, w, band, share, top)
    return np.clip(np.where(np.isnan(judge), emb, led), 0.0, top)


def _better(metric: str, new: float, old: float) -> bool:
    if not math.isfinite(new):
        return False
    if not math.isfinite(old):
        return True
    return new < old - 1e-12 if metric in LOWER_IS_BETTER else new > old + 1e-12


class Tuner:
    def __init__(
        self,
        inputs: TuneInputs,
        base: object,
        base_prompt: str | None,
        base_weights: tuple[float, float],
        base_band: float = 1.0,
        metric: str = "qwk",
        folds: int | None = None,
        alphas: Sequence[float] = ALPHA_GRID,
        feature_sets: Sequence[tuple[str, ...]] | None = None,
        seed: int = DEFAULT_SEED,
    ) -> None:
        if metric not in SELECTION_METRICS:
            raise ValueError(f"metric must be one of {', '.join(SELECTION_METRICS)}")
        self.inputs = inputs
        self.metric = metric
        self.folds = folds
        self.seed = seed
        self.top = inputs.max_score
        self.human = np.asarray(inputs.human, dtype=np.float64)
        self.y_frac = self.human / self.top
        self.groups = list(inputs.groups)
        from grader.embedding.calibration import whole_points

        # The base calibration's stretch is kept as it is, like its gates (grader.embedding.refit fits it), on
        # whole-point grades only.
        stretch = float(getattr(base, "stretch", 1.0)) if whole_points(self.human) else 1.0
        self.sig = _Signals(inputs.signals, base, stretch)
        base_recipe = Recipe(features=tuple(base.features), alpha=float(base.alpha))  # type: ignore[attr-defined]
        sets = [base_recipe.features, *(feature_sets if feature_sets is not None else EXTRA_FEATURE_SETS)]
        sets = [fs for i, fs in enumerate(sets) if fs not in sets[:i] and self.sig.available(fs)]
        alpha_list = sorted({base_recipe.alpha, *alphas})
        self.recipes = [base_recipe] + [
            Recipe(features=fs, alpha=a) for fs in sets for a in alpha_list if Recipe(features=fs, alpha=a) != base_recipe
        ]
        self.judge = {p: np.array([np.nan if v is None else v for v in s], dtype=np.float64) for p, s in inputs.judge.items()}
        self.open = {
            p: np.array([1.0 if v is None else v for v in inputs.judge_open.get(p, [None] * len(s))], dtype=np.float64)
            for p, s in inputs.judge.items()
        }
        prompts: list[str | None] = list(self.judge) or [None]
        if base_prompt is not None and base_prompt in self.judge:
            prompts.remove(base_prompt)
            prompts.insert(0, base_prompt)
        self.prompts = prompts
        we, wj = base_weights
        base_w = we / (we + wj) if we + wj > 0 else 0.0
        judged = prompts[0] is not None
        self.base = Candidate(recipe=base_recipe, prompt=prompts[0], embedding_weight=round(base_w, 6) if judged else 1.0,
                              band=base_band if judged else 1.0)
        grid = sorted({*WEIGHT_GRID, round(base_w, 6)})
        self.weights = grid
        self.bands = sorted({*BAND_GRID, base_band})

    # every candidate's combined score, given embedding predictions for some rows
    def _candidates_for(self, recipe: Recipe) -> list[Candidate]:
        out = []
        for p in self.prompts:
            for w in self.weights if p is not None else [1.0]:
                # Weight 0 leaves nothing for the band to scale: one candidate, not one per band.
                for b in (self.bands if w > 0 else [self.bands[0]]) if p is not None else [1.0]:
                    out.append(Candidate(recipe=recipe, prompt=p, embedding_weight=w, band=b))
        return out

    @property
    def n_candidates(self) -> int:
        per_prompt = (len(self.weights) - 1) * len(self.bands) + 1
        return len(self.recipes) * sum(per_prompt if p is not None else 1 for p in self.prompts)

    def _score(self, idx: NDArray[np.int64], pred: FloatArray) -> float:
        return float(_METRIC_FN[self.metric](self.human[idx], pred, self.top))

    def _cv_embedding(self, recipe: Recipe, rows: NDArray[np.int64], k: int | None) -> FloatArray:
        """Held-out embedding scores (on the scale) for `rows`, folds by question within `rows`."""
        out = np.empty(rows.size, dtype=np.float64)
        for test_local in grouped_folds([self.groups[i] for i in rows], k, self.seed):
            train_local = np.setdiff1d(np.arange(rows.size), test_local)
            out[test_local] = self.top * _predict_fraction(self.sig, recipe, rows[train_local], rows[test_local], self.y_frac)
        return out

    def combined(self, cand: Candidate, rows: NDArray[np.int64], emb: FloatArray) -> FloatArray:
        if cand.prompt is None:
            return emb
        return _mix(emb, self.judge[cand.prompt][rows], cand.embedding_weight, self.top, cand.band,
                    self.open[cand.prompt][rows])

    def select(self, rows: NDArray[np.int64], k: int | None) -> tuple[Candidate, float]:
        """The best candidate by grouped CV within `rows`; the base wins ties."""
        best, best_value = self.base, math.nan
        base_emb = self._cv_embedding(self.base.recipe, rows, k)
        best_value = self._score(rows, self.combined(self.base, rows, base_emb))
        for recipe in self.recipes:
            emb = base_emb if recipe == self.base.recipe else self._cv_embedding(recipe, rows, k)
            for cand in self._candidates_for(recipe):
                value = self._score(rows, self.combined(cand, rows, emb))
                if _better(self.metric, value, best_value):
                    best, best_value = cand, value
        return best, best_value

    def nested(self, inner_k: int = 5) -> tuple[FloatArray, FloatArray, Counter[Candidate]]:
        """Outer held-out predictions for the base candidate and for the tuning procedure."""
        n = self.human.size
        all_rows = np.arange(n)
        base_pred = np.empty(n)
        tuned_pred = np.empty(n)
        choices: Counter[Candidate] = Counter()
        for test in grouped_folds(self.groups, self.folds, self.seed):
            train = np.setdiff1d(all_rows, test)
            emb = self.top * _predict_fraction(self.sig, self.base.recipe, train, test, self.y_frac)
            base_pred[test] = self.combined(self.base, test, emb)
            cand, _ = self.select(train, inner_k)
            choices[cand] += 1
            emb = self.top * _predict_fraction(self.sig, cand.recipe, train, test, self.y_frac)
            tuned_pred[test] = self.combined(cand, test, emb)
        return base_pred, tuned_pred, choices

    def cv_base(self) -> tuple[FloatArray, FloatArray]:
        """Held-out (embedding, combined) scores of the base candidate: its recipe refitted without each fold."""
        n = self.human.size
        emb_pred = np.empty(n)
        combined = np.empty(n)
        for test in grouped_folds(self.groups, self.folds, self.seed):
            train = np.setdiff1d(np.arange(n), test)
            emb_pred[test] = self.top * _predict_fraction(self.sig, self.base.recipe, train, test, self.y_frac)
            combined[test] = self.combined(self.base, test, emb_pred[test])
        return emb_pred, combined

    def run(self, inner_k: int = 5, resamples: int = DEFAULT_RESAMPLES) -> TuneResult:
        base_pred, tuned_pred, choices = self.nested(inner_k)
        all_rows = np.arange(self.human.size)
        chosen, _ = self.select(all_rows, self.folds)
        chosen_emb = self._cv_embedding(chosen.recipe, all_rows, self.folds)
        chosen_pred = self.combined(chosen, all_rows, chosen_emb)
        n_q = len(set(self.groups))
        scheme = "leave-one-question-out" if not self.folds or self.folds >= n_q else f"{self.folds}-fold by question"
        judge_only = {}
        for p, scores in self.judge.items():
            ok = ~np.isnan(scores)
            if ok.sum() > 1:
                judge_only[p] = bootstrap_metrics(
                    self.human[ok], scores[ok], self.top, [g for g, o in zip(self.groups, ok, strict=True) if o],
                    n_resamples=resamples, seed=self.seed,
                )
        default_cv = bootstrap_metrics(self.human, base_pred, self.top, self.groups, n_resamples=resamples, seed=self.seed)
        tuned_cv = bootstrap_metrics(self.human, tuned_pred, self.top, self.groups, n_resamples=resamples, seed=self.seed)
        difference = paired_difference(
            self.human, base_pred, tuned_pred, self.top, self.groups, n_resamples=resamples, seed=self.seed
        )
        # Adopt a change only when it is shown to be better; otherwise the default stays (and so does its figure).
        adopted = difference[self.metric].verdict == "better" and chosen != self.base
        return TuneResult(
            metric=self.metric,
            scheme=f"nested: outer {scheme}, inner {inner_k}-fold by question",
            n=int(self.human.size),
            n_questions=n_q,
            base=self.base,
            chosen=chosen,
            default_cv=default_cv,
            tuned_cv=tuned_cv,
            difference=difference,
            adopted=adopted,
            written=chosen if adopted else self.base,
            written_cv=tuned_cv if adopted else default_cv,
            chosen_cv_optimistic={m: float(_all(self.human, chosen_pred, self.top)[m]) for m in METRIC_NAMES},
            fold_choices={c.describe(): k for c, k in choices.most_common()},
            judge_only=judge_only,
            n_candidates=self.n_candidates,
        )


def _all(h: FloatArray, g: FloatArray, top: float) -> dict[str, float]:
    from grader.evaluation.metrics import all_metrics

    return all_metrics(h, g, top)


def stamp() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
