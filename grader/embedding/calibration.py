"""The calibrated map from signals to a score: standardised ridge regression, readable as JSON.

The model is small on purpose: a handful of coefficients over named signals, a relevance gate and a
clip, all written to grader/data/calibration.json with where they came from (data file and hash,
rows, questions, grouped cross-validation figures, date, model, code version).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from grader.errors import InputError
from grader.paths import PACKAGE_DIR

if TYPE_CHECKING:
    from grader.config import Settings
    from grader.models import Rubric

CODE_VERSION = "embedding-calibration/2"
# Chosen by question-grouped cross-validation on Mohler dev and the interview set (grader/embedding/README.md).
# crit_recall_true is the key points' recall with contradicted points counting nothing; credited is the weight of
# the points made and not contradicted; point_words_true the share of each point's own words (in its closest
# phrasing) the answer uses, contradicted points counting nothing: it tells a wrong answer near the topic from a
# paraphrase, which the contextual embeddings place alike.
DEFAULT_FEATURES = ("cos_ref_qd", "crit_recall_true", "cos_ref_qd^2", "crit_recall_true^2", "contradicted_weight",
                    "credited", "point_words_true", "point_words_true^2")
DEFAULT_ALPHA = 1.0
# A row the gates pass at least this much is "on topic and a statement": the ridge is fitted on those rows only,
# since the gates, not the ridge, are what send off-topic answers and keyword lists to 0.
PASSING = 0.99


def default_calibration_path() -> Path:
    """The calibration shipped with the package (fitted on Mohler dev)."""
    return PACKAGE_DIR / "data" / "calibration.json"


def ramp(v: float, lo: float, hi: float) -> float:
    """0 below lo, 1 above hi, linear between: how gates, point credit and the statement score soften a cut."""
    return float(min(1.0, max(0.0, (v - lo) / (hi - lo))))


class Gate(BaseModel):
    """Scales the score down to 0 as ``signal`` falls from ``hi`` to ``lo``: off-topic answers earn nothing.

    A linear model fitted on graded answers (nearly all on topic) extrapolates badly to answers about
    something else entirely; the gate is that missing knowledge, stated as two numbers.
    """

    signal: str
    lo: float
    hi: float

    def factor(self, signals: dict[str, float]) -> float:
        if self.signal not in signals:
            return 1.0  # signals from an older scorer (or synthetic rows) that lack it: nothing to gate on
        v = signals[self.signal]
        if self.hi <= self.lo:
            return 1.0 if v >= self.hi else 0.0
        return ramp(v, self.lo, self.hi)


class Cap(BaseModel):
    """The score follows the points: the predicted share is at most ``slope * signal + margin``.

    With ``signal = "credited"`` (the weight of the key points the answer makes and does not contradict), a
    grade whose points are all missed or contradicted cannot come out at 3.5/5 from overall similarity alone.
    ``margin`` is fitted by grouped cross-validation (crossval.fit_cap), not set by hand.
    """

    signal: str = "credited"
    slope: float = 1.0
    margin: float = Field(default=0.3, ge=0.0, le=1.0)

    def limit(self, signals: dict[str, float]) -> float:
        return self.slope * signals.get(self.signal, 0.0) + self.margin


CAP_MARGINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def fit_cap_margin(
    fraction: np.ndarray, cap_signal: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None,
    slope: float = 1.0, margins: tuple[float, ...] = CAP_MARGINS,
) -> float:
    """The cap margin (from ``margins``) whose capped predictions have the lowest weighted squared error.

    ``fraction`` are the gated predictions (share of the maximum) of the rows the margin is fitted on, ``target``
    their human share. Every refit of a calibration refits the margin with it (grouped CV included), because how
    far a score may run ahead of its key points is a property of the graders: Mohler's lenient ones give credit the
    points do not carry, the interview guideline does not.
    """
    w = np.ones(len(target)) if weights is None else np.asarray(weights, dtype=np.float64)
    best, best_err = margins[-1], float("inf")
    for m in margins:
        pred = np.minimum(fraction, slope * cap_signal + m)
        err = float(np.average((pred - target) ** 2, weights=w))
        if err < best_err - 1e-12:
            best, best_err = m, err
    return best


class CoverageMap(BaseModel):
    """Maps a key point's similarity to 0..1 credit; a point with credit >= covered_at counts as made."""

    # Set on the hand-made cases in tests/test_embedding_coverage.py: made points sit above ~0.5, points
    # that are absent or merely restated from the question below ~0.47, so a point counts as made from
    # similarity 0.5. Credit is full from 0.55 (not 0.7): a point made in other words than the rubric's reaches
    # ~0.45-0.55 with this encoder; chosen by leave-one-question-out on Mohler dev and both interview sets. The
    # defaults are also the scorer's ``credited`` signal (grader/embedding/signals.py).
    lo: float = 0.3
    hi: float = 0.55
    covered_at: float = 0.8

    def credit(self, similarity: float) -> float:
        return ramp(similarity, self.lo, self.hi)


class CVMetrics(BaseModel):
    pearson: float
    spearman: float
    rmse: float
    mae: float
    n: int
    folds: int
    scheme: str = Field(description="How rows were split, e.g. 'leave-one-question-out'.")


def provenance_shas(provenance: Mapping[str, Any]) -> set[str]:
    """The hashes of every data file a fitted model's provenance names: its ``data_sha256`` and, for a joint fit,
    each of its ``sources`` (calibrations and confidence models write the same two keys)."""
    shas = {provenance.get("data_sha256")}
    shas |= {s.get("sha256") for s in provenance.get("sources") or [] if isinstance(s, dict)}
    return {s for s in shas if isinstance(s, str) and s}


class Source(BaseModel):
    """One graded set a calibration was fitted on."""

    file: str
    sha256: str
    n_rows: int
    weight: float = Field(default=1.0, description="Per-answer weight, so each source has the same total.")


class Provenance(BaseModel):
    data_file: str | None = None
    data_sha256: str | None = None
    sources: list[Source] = Field(default_factory=list, description="Every graded set of a joint fit.")
    n_rows: int = 0
    n_questions: int = 0
    cv: CVMetrics | None = None
    fitted_at: str | None = None
    model: str | None = None
    code_version: str = CODE_VERSION
    notes: str = ""


class Calibration(BaseModel):
    schema_version: Literal[1] = 1
    name: str
    features: list[str] = Field(description="Signal names; 'x^2' is the square of signal x.")
    scaler_mean: list[float]
    scaler_scale: list[float]
    coefficients: list[float]
    intercept: float
    alpha: float = DEFAULT_ALPHA
    clip: tuple[float, float] = (0.0, 1.0)
    stretch: float = Field(
        default=1.0, ge=1.0, le=2.0,
        description="The ridge's share is multiplied by this before the clip. Least squares on noisy signals pulls "
                    "every grade toward the mean (a complete answer at 3.9/5); the stretch that agrees best with the "
                    "graders (QWK, leave-one-question-out) undoes part of that. Fitted by grader.embedding.refit.",
    )
    gate: Gate | None = None
    gates: list[Gate] = Field(
        default_factory=list,
        description="More gates, multiplied with `gate`: off-topic (topic_margin), not a statement (statement).",
    )
    cap: Cap | None = None
    coverage: CoverageMap = Field(default_factory=CoverageMap)
    provenance: Provenance = Field(default_factory=Provenance)

    def all_gates(self) -> list[Gate]:
        return ([self.gate] if self.gate is not None else []) + list(self.gates)

    def gate_factor(self, signals: dict[str, float]) -> float:
        f = 1.0
        for g in self.all_gates():
            f *= g.factor(signals)
        return f

    def limit(self, signals: dict[str, float]) -> float:
        """The cap on the share of the maximum (1.0 when there is no cap)."""
        return 1.0 if self.cap is None else self.cap.limit(signals)

    def fraction(self, signals: dict[str, float]) -> float:
        """The predicted share of the maximum score, in [clip]: ridge, clipped, gated, capped by the points."""
        x = feature_vector(signals, self.features)
        y = float(ridge_share(x, np.asarray(self.scaler_mean), np.asarray(self.scaler_scale),
                              np.asarray(self.coefficients), self.intercept, self.stretch, self.clip))
        y *= self.gate_factor(signals)
        return max(0.0, min(y, self.limit(signals)))

    def predict(self, signals: dict[str, float], max_score: float) -> float:
        return self.fraction(signals) * max_score

    @property
    def label(self) -> str:
        sha = (self.provenance.data_sha256 or "")[:12]
        return f"{self.name}" + (f" (data sha256:{sha})" if sha else "")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot read calibration: {e.strerror}", file=p) from e
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or None
            raise InputError(f"invalid calibration: {err['msg']}", file=p, field=field) from e

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
        return p


def feature_value(signals: dict[str, float], name: str) -> float:
    if name.endswith("^2"):
        v = signals[name[:-2]]
        return v * v
    return signals[name]


def feature_vector(signals: dict[str, float], features: list[str] | tuple[str, ...]) -> np.ndarray:
    try:
        return np.array([feature_value(signals, f) for f in features], dtype=np.float64)
    except KeyError as e:
        raise InputError(f"calibration uses signal {e.args[0]!r}, which the scorer does not compute",
                         field="features") from e


def feature_matrix(signals: list[dict[str, float]], features: list[str] | tuple[str, ...]) -> np.ndarray:
    return np.stack([feature_vector(s, features) for s in signals]) if signals else np.zeros((0, len(features)))


def ridge_share(
    x: np.ndarray, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float, stretch: float = 1.0,
    clip: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """The ridge's share of the maximum, stretched and clipped: what every fit and prediction of the recipe uses
    before the gates and the cap."""
    return np.clip((((x - mean) / scale) @ coef + intercept) * stretch, clip[0], clip[1])


def whole_points(scores: Iterable[float]) -> bool:
    """Grades in whole points (one grader's integers), not means of several graders (Mohler's halves). The
    stretch is fitted and applied for the first kind only: squared error, which averaged grades are agreed
    with by, wants none."""
    return all(float(s).is_integer() for s in scores)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise, then ridge: (mean, scale, coefficients, intercept). ``weights`` balance data sources."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.mean()
    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (x - mean) / scale
    ybar = float(np.average(y, weights=w))
    zw = z * w[:, None]
    coef = np.linalg.solve(zw.T @ z + alpha * np.eye(z.shape[1]), zw.T @ (y - ybar))
    return mean, scale, np.asarray(coef, dtype=np.float64), ybar


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fit_calibration(
    signals: list[dict[str, float]],
    targets: list[float],
    groups: list[str],
    max_scores: list[float],
    *,
    features: list[str] | tuple[str, ...] = DEFAULT_FEATURES,
    alpha: float = DEFAULT_ALPHA,
    gate: Gate | None = None,
    gates: list[Gate] | None = None,
    cap: Cap | None = None,
    stretch: float = 1.0,
    refit_cap_margin: bool = False,
    weights: list[float] | None = None,
    coverage: CoverageMap | None = None,
    name: str = "custom",
    data_file: str | Path | None = None,
    model_name: str | None = None,
    folds: int | None = None,
    notes: str = "",
) -> Calibration:
    """Fit on every row; report question-grouped cross-validation of the same recipe in the provenance.

    ``targets`` are on each row's own scale (0..max_scores[i]); the model predicts the share of the
    maximum, so rubrics with different scales can be mixed. ``folds=None`` means leave one question out.
    """
    from grader.embedding.crossval import SignalRow, grouped_cv

    if not (len(signals) == len(targets) == len(groups) == len(max_scores)):
        raise ValueError("signals, targets, groups and max_scores must have the same length")
    if len(set(groups)) < 2:
        raise InputError("calibration needs graded answers to at least two different questions")
    x = feature_matrix(signals, features)
    y = np.array([t / m for t, m in zip(targets, max_scores, strict=True)], dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64) if weights is not None else np.ones(len(y))
    every = ([gate] if gate is not None else []) + list(gates or [])
    factor = np.array([float(np.prod([g.factor(sig) for g in every])) for sig in signals]) if every else np.ones(len(y))
    keep = factor >= PASSING
    mean, scale, coef, intercept = fit_ridge(x[keep], y[keep], alpha, w[keep])
    if cap is not None and refit_cap_margin:
        gated = ridge_share(x, mean, scale, coef, intercept, stretch) * factor
        signal = np.array([sig.get(cap.signal, 0.0) for sig in signals])
        cap = cap.model_copy(update={"margin": fit_cap_margin(gated, signal, y, w, slope=cap.slope)})
    rows = [
        SignalRow(signals=s, score=t, max_score=m, group=g, weight=float(w[i]))
        for i, (s, t, m, g) in enumerate(zip(signals, targets, max_scores, groups, strict=True))
    ]
    cv = grouped_cv(rows, features=features, alpha=alpha, gate=gate, folds=folds, gates=gates, cap=cap, stretch=stretch)
    data_path = Path(data_file) if data_file is not None else None
    return Calibration(
        name=name,
        features=list(features),
        scaler_mean=mean.tolist(),
        scaler_scale=scale.tolist(),
        coefficients=coef.tolist(),
        intercept=intercept,
        alpha=alpha,
        stretch=stretch,
        gate=gate,
        gates=list(gates or []),
        cap=cap,
        coverage=coverage or CoverageMap(),
        provenance=Provenance(
            data_file=_display_path(data_path) if data_path else None,
            data_sha256=sha256_file(data_path) if data_path and data_path.is_file() else None,
            n_rows=len(rows),
            n_questions=len(set(groups)),
            cv=CVMetrics(**{k: cv[k] for k in ("pearson", "spearman", "rmse", "mae", "n", "folds", "scheme")}),
            fitted_at=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            model=model_name,
            notes=notes,
        ),
    )


def _display_path(p: Path) -> str:
    """Repo-relative where possible, so the shipped file does not carry one machine's absolute path."""
    from grader.paths import REPO_ROOT

    try:
        return str(Path("..") / p.resolve().relative_to(REPO_ROOT.parent))
    except ValueError:
        return str(p)


def extract_signals(pairs: list[tuple[Rubric, str]], settings: Settings | None = None) -> list[dict[str, float]]:
    """Every signal for each (rubric, answer), batched: the input a refit (``grader tune``) needs."""
    from grader.embedding.scorer import OfflineScorer

    scorer = OfflineScorer(settings, calibration=_NEUTRAL)
    # The questions graded together are each other's bank: an answer to one is off-topic for the others.
    scorer.use_bank(r for r, _ in pairs)
    return scorer.signals_many(pairs)


# Lets extract_signals run before any calibration exists (e.g. the very first fit).
_NEUTRAL = Calibration(
    name="neutral", features=["cos_ref"], scaler_mean=[0.0], scaler_scale=[1.0], coefficients=[1.0], intercept=0.0
)
