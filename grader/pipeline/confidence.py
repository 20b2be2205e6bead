"""How sure a grade is, and why a person should look at it. Pure functions plus a small fitted model.

Two parts:

- **Review reasons**, each a short code and one sentence (`ReviewReason`). Some are plain facts about the grade
  (the judge failed, the answer tries to steer the grader, it is near the length limit, a point was contradicted
  offline, the judge's samples disagree, the score is near the user's pass mark); three need fitted numbers,
  which the confidence model holds: the judge and the offline scorer disagree by more than `disagreement` (a
  high quantile of the offline scorer's own held-out error, so "disagree" means "further apart than the offline
  scorer usually errs"); the answer is `off-topic` (its topicality, the larger of its similarity to the
  reference and to the question, is below what nearly every graded answer had); and `uncertain` (the expected
  error is above `threshold`, the quantile that sends the target share of answers to review).
- **Confidence** in 0..1: 1 - expected error / (max_score / 2), halved for every other review reason. The
  expected error is a small boosted ensemble of depth-2 regression trees predicting |grader - human| from the
  grade's score and signals, fitted by `grader tune` on held-out (out-of-fold) errors; the model is a JSON file
  with its provenance (grader/data/confidence.json, or `confidence.model` in a config).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from grader.config import ConfidenceSettings
from grader.errors import InputError, read_utf8
from grader.models import EmbeddingResult, GradeResult, JudgeResult, ReviewReason
from grader.paths import PACKAGE_DIR

# Reasons that are facts about one grade: they do not depend on the fitted model or on the calibration.
FACT_CODES = ("judge-failed", "manipulation", "truncated", "contradicted-offline", "judge-spread")
MODEL_CODES = ("disagreement", "off-topic", "uncertain")
ALL_CODES = (*FACT_CODES, *MODEL_CODES, "pass-mark")
# Features of the grade itself; the error model also uses every signal the scorer computes (by name, so a
# newer scorer's signals are picked up by the next fit, and a signal missing at prediction time counts as 0).
GRADE_FEATURES: tuple[str, ...] = ("score", "score_mid", "judge_gap", "judge_spread")
# The encoder reads at most this many word pieces of an answer (all-MiniLM-L6-v2: 256); an English word is
# about 1.3 pieces, so a longer answer's offline score saw only its start.
REASON_PENALTY = 0.5


def default_confidence_path() -> Path:
    return PACKAGE_DIR / "data" / "confidence.json"


class Tree(BaseModel):
    """One regression tree in arrays (as scikit-learn stores it): node i splits on features[feature[i]] at
    threshold[i] (<= goes left); a leaf has left[i] == -1 and predicts value[i]."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def predict(self, x: Sequence[float]) -> float:
        i = 0
        while self.left[i] != -1:
            i = self.left[i] if x[self.feature[i]] <= self.threshold[i] else self.right[i]
        return self.value[i]


class ConfidenceModel(BaseModel):
    """A fitted error model and the review thresholds, as written by `grader tune`."""

    schema_version: Literal[1] = 1
    features: list[str]
    base: float = Field(description="Expected |error| (fraction of max_score) before the trees.")
    learning_rate: float = 0.1
    trees: list[Tree] = Field(default_factory=list)
    threshold: float = Field(description="Expected error (fraction of max_score) above which: 'uncertain'.")
    review_share: float = Field(description="The share of answers the thresholds were fitted to send to review.")
    disagreement: float = Field(description="Judge-vs-offline gap (fraction of max_score) that counts as disagreement.")
    offtopic: float = Field(description="Topicality below which an answer is far from everything seen.")
    provenance: dict[str, Any] = Field(default_factory=dict)

    def expected_error(self, features: Mapping[str, float]) -> float:
        """Predicted |grader - human| as a fraction of max_score (never below 0)."""
        x = [features.get(f, 0.0) for f in self.features]
        return max(0.0, self.base + self.learning_rate * sum(t.predict(x) for t in self.trees))

    @classmethod
    def load(cls, path: str | Path) -> ConfidenceModel:
        import json

        text = read_utf8(Path(path), "confidence model")
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, ValidationError) as e:
            raise InputError(f"not a confidence model: {str(e).splitlines()[0]}", file=path) from e

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return p


@lru_cache(maxsize=8)
def load_model(path: str | None) -> ConfidenceModel:
    return ConfidenceModel.load(path or default_confidence_path())


# -- features ------------------------------------------------------------------------------------------
def features(
    signals: Mapping[str, float],
    score: float,
    embedding: float | None,
    judge: float | None,
    spread: float | None,
    max_score: float,
) -> dict[str, float]:
    """The error model's inputs for one grade; scores are fractions of max_score."""
    top = max_score or 1.0
    p = score / top
    out = {k: float(v) for k, v in signals.items()}
    out.update(
        {
            "score": p,
            "score_mid": p * (1.0 - p),
            "judge_gap": abs(embedding - judge) / top if judge is not None and embedding is not None else 0.0,
            "judge_spread": (spread or 0.0) / top,
        }
    )
    return out


def confidence_value(expected_error: float, n_reasons: int) -> float:
    """1 - expected error / half the scale (both as fractions of max_score), halved per other reason."""
    base = min(1.0, max(0.0, 1.0 - expected_error / 0.5))
    return round(base * REASON_PENALTY**n_reasons, 4)


# -- reasons -------------------------------------------------------------------------------------------
def fact_reasons(
    answer: str,
    embedding: EmbeddingResult | None,
    judge: JudgeResult | None,
    status: str,
    warnings: Sequence[str],
    settings: ConfidenceSettings,
    max_answer_chars: int,
) -> list[ReviewReason]:
    """Reasons that are plain facts about this grade."""
    out: list[ReviewReason] = []
    if judge is not None and judge.status == "unscored" and status == "fallback":
        out.append(ReviewReason(code="judge-failed", message=f"The judge failed ({judge.error or 'no reason'}); "
                                "the offline score stands in."))
    manip = [w for w in warnings if w.startswith("possible prompt injection")]
    if manip:
        kinds = ", ".join(w.split("(", 1)[1].split(")", 1)[0] for w in manip)
        out.append(ReviewReason(code="manipulation", message=f"The answer may try to steer the grader ({kinds})."))
    if max_answer_chars and len(answer) >= settings.near_limit * max_answer_chars:
        out.append(ReviewReason(code="truncated", message=f"The answer is near the length limit ({len(answer)} of "
                                f"{max_answer_chars} characters)."))
    if embedding is not None:
        bad = [c for c in embedding.coverage if getattr(c, "contradicted", False)]
        made = [c for c in embedding.coverage if c.covered and not getattr(c, "contradicted", False)]
        # A person is needed where the answer both makes points and contradicts others: the offline reading of a
        # mixed answer is the least sure. An answer that contradicts every point it touches is graded 0 on
        # consistent evidence, and its record still shows each contradicted point with the clause quoted.
        if bad and made:
            span = next((c.contradiction for c in bad if c.contradiction), None)
            quote = f": {span[:80]!r}" if span else ""
            out.append(ReviewReason(code="contradicted-offline", message="The offline scorer found key point(s) "
                                    f"{', '.join(c.id for c in bad)} contradicted{quote}, while the answer makes "
                                    f"{', '.join(c.id for c in made)}."))
    spread = judge.spread if judge is not None and judge.status == "scored" else None
    if judge is not None and spread is not None and spread >= settings.spread_at * judge.max_score:
        shown = ", ".join(f"{s:g}" for s in judge.samples)
        out.append(ReviewReason(code="judge-spread", message=f"The judge's samples disagree ({shown}; "
                                f"standard deviation {spread:.2f})."))
    return out


def model_reasons(
    model: ConfidenceModel,
    signals: Mapping[str, float],
    embedding_score: float | None,
    judge_score: float | None,
    expected_error: float,
    max_score: float,
) -> list[ReviewReason]:
    """Reasons that need the fitted thresholds (all compared as fractions of max_score)."""
    out: list[ReviewReason] = []
    top = max_score or 1.0
    if embedding_score is not None and judge_score is not None:
        gap = abs(embedding_score - judge_score)
        if gap > model.disagreement * top:
            out.append(ReviewReason(code="disagreement", message=f"The judge ({judge_score:.1f}) and the offline "
                                    f"scorer ({embedding_score:.1f}) disagree by {gap:.1f} points (margin "
                                    f"{model.disagreement * top:.1f})."))
    topic = signals.get("topicality")
    if topic is not None and topic < model.offtopic:
        out.append(ReviewReason(code="off-topic", message=f"The answer is far from the reference and the question "
                                f"(similarity {topic:.2f}, below {model.offtopic:.2f}: unlike the answers seen)."))
    if expected_error > model.threshold:
        out.append(ReviewReason(code="uncertain", message=f"Expected error {expected_error * top:.2f} points, "
                                f"above the review threshold {model.threshold * top:.2f}."))
    return out


def pass_mark_reason(score: float | None, settings: ConfidenceSettings) -> ReviewReason | None:
    if score is None or settings.pass_mark is None:
        return None
    if abs(score - settings.pass_mark) <= settings.pass_margin:
        return ReviewReason(code="pass-mark", message=f"The score {score:.2f} is within {settings.pass_margin:g} of "
                            f"the pass mark {settings.pass_mark:g}.")
    return None


def assess(
    result: GradeResult,
    answer: str,
    model: ConfidenceModel,
    settings: ConfidenceSettings,
    max_answer_chars: int,
) -> tuple[float | None, list[ReviewReason]]:
    """(confidence, review reasons) for one grade. No score: confidence None, the reasons say why."""
    emb = result.embedding
    jr = result.judge
    top = result.max_score
    emb_score = emb.score * top / emb.max_score if emb is not None and emb.max_score else None
    jud = jr.score * top / jr.max_score if jr is not None and jr.score is not None and jr.max_score else None
    reasons = fact_reasons(answer, emb, jr, result.status, result.warnings, settings, max_answer_chars)
    if result.score is None:
        return None, reasons
    spread = jr.spread * top / jr.max_score if jr is not None and jr.spread is not None else None
    feats = features(emb.signals if emb is not None else {}, result.score, emb_score, jud, spread, top)
    err = model.expected_error(feats)
    reasons += model_reasons(model, emb.signals if emb is not None else {}, emb_score, jud, err, top)
    pm = pass_mark_reason(result.score, settings)
    if pm is not None:
        reasons.append(pm)
    others = sum(1 for r in reasons if r.code != "uncertain")
    return confidence_value(err, others), reasons


def count_reasons(reasons: Iterable[Iterable[str]]) -> dict[str, int]:
    """How many grades carry each reason code, most frequent first."""
    counts: dict[str, int] = {}
    for codes in reasons:
        for c in set(codes):
            counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

