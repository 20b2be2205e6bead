"""Combine the offline scorer and the judge into one score and one list of per-point results. Pure.

The rules, so that a grade can be re-derived by hand from the recorded components:

- offline only (no judge): score = embedding score.
- judge scored: the judge leads. With J the judge's score, E the embedding score (both on the rubric's scale),
  we = embedding_weight / (embedding_weight + judge_weight), and `open` the weight share of the key points the
  judge did not settle (verdict "partial", or no verdict):

      limit = band * open * max_score
      score = J + clip(we * (E - J), -limit, +limit)

  So a judge that gives every point a clear verdict (met, missed or contradicted) decides the grade alone, and
  otherwise the embedding moves it by at most `limit`. With band 1 and every point open this is the plain
  weighted mean we * E + (1 - we) * J. `combination` records J, E, we, band, open and the shift applied.
  With no embedding result, or both weights zero, the judge's score alone.
- judge unscored and fallback allowed: status "fallback", score = embedding score.
- judge unscored and no fallback: status "unscored", score None.

Per key point, the judge's verdict (when it gave one) decides the credit via VERDICT_CREDIT, so coverage never
lifts a point the judge marked missed or contradicted; otherwise a point the offline scorer found contradicted
(negation, opposite direction, swapped role) is "contradicted" with no credit and the contradicting clause as
evidence, and any other point's status is read off the embedding coverage with the thresholds below.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, TypeVar

import numpy as np

from grader.config import CombineSettings
from grader.models import (
    VERDICT_CREDIT,
    CriterionResult,
    EmbeddingResult,
    JudgeResult,
    Rubric,
    Verdict,
)

# Coverage at or above MET_AT counts as met, at or above PARTIAL_AT as partial. They mirror the judge's
# credit levels (1.0 / 0.5 / 0.0) so that both sources describe a point with the same words.
MET_AT = 0.75
PARTIAL_AT = 0.35
SCORE_DECIMALS = 4

GradeStatus = Literal["graded", "fallback", "unscored"]
CLEAR_VERDICTS: frozenset[str] = frozenset({"met", "missed", "contradicted"})
Num = TypeVar("Num", float, np.ndarray)


class Combined(NamedTuple):
    score: float | None
    status: GradeStatus
    criteria: list[CriterionResult]
    combination: dict[str, float]


def status_from_credit(credit: float) -> Verdict:
    if credit >= MET_AT:
        return "met"
    if credit >= PARTIAL_AT:
        return "partial"
    return "missed"


def _rescale(score: float, from_max: float, to_max: float) -> float:
    return score if from_max == to_max or from_max <= 0 else score * to_max / from_max


def _clamp(x: float, hi: float) -> float:
    return min(max(x, 0.0), hi)


def open_share(rubric: Rubric, judge: JudgeResult) -> float:
    """The weight share of the rubric's points the judge left open (partial or no verdict); 1 without points."""
    weights = rubric.normalised_weights()
    if not weights:
        return 1.0
    clear = {v.id for v in judge.verdicts if v.verdict in CLEAR_VERDICTS}
    return float(sum(w for c, w in zip(rubric.criteria, weights, strict=True) if c.id not in clear))


def judge_led(judge: Num, embedding: Num, we: float, band: float, open_: Num, max_score: float) -> Num:
    """The judged score: the judge's, moved by the weighted embedding difference within band * open * max.

    Works on floats and on numpy arrays alike (`grader tune` evaluates it on a whole eval set at once)."""
    limit = band * open_ * max_score
    shift = np.clip(we * (embedding - judge), -limit, limit)
    return np.clip(judge + shift, 0.0, max_score)  # type: ignore[return-value]


def merge_criteria(
    rubric: Rubric, embedding: EmbeddingResult | None, judge: JudgeResult | None
) -> list[CriterionResult]:
    """One result per rubric point: coverage from the scorer, verdict from the judge, merged credit."""
    coverage = {c.id: c for c in embedding.coverage} if embedding is not None else {}
    verdicts = {v.id: v for v in judge.verdicts} if judge is not None and judge.status == "scored" else {}
    out: list[CriterionResult] = []
    for crit, weight in zip(rubric.criteria, rubric.normalised_weights(), strict=True):
        cov = coverage.get(crit.id)
        ver = verdicts.get(crit.id)
        if ver is not None:
            credit = VERDICT_CREDIT[ver.verdict]
            status: Verdict = ver.verdict
        elif cov is not None and cov.contradicted:
            # The offline scorer read the answer denying the point (negation, opposite word, swapped role).
            credit, status = 0.0, "contradicted"
        else:
            credit = cov.coverage if cov is not None else 0.0
            status = status_from_credit(credit)
        offline_contradiction = ver is None and cov is not None and cov.contradicted
        out.append(
            CriterionResult(
                id=crit.id,
                text=crit.text,
                weight=round(weight, 6),
                coverage=round(cov.coverage, SCORE_DECIMALS) if cov is not None else None,
                verdict=ver.verdict if ver is not None else None,
                credit=round(_clamp(credit, 1.0), SCORE_DECIMALS),
                status=status,
                evidence=(cov.contradiction if offline_contradiction else cov.best_span) if cov is not None else None,
                comment=(ver.comment or None) if ver is not None else (_contradiction_note(cov) if offline_contradiction
                                                                       else None),
            )
        )
    return out


def _contradiction_note(cov: object) -> str:
    span = getattr(cov, "contradiction", None) or ""
    cue = getattr(cov, "cue", None) or "contradicts it"
    return f'your answer {cue}: "{span}"' if span else f"your answer {cue}"


def combine(
    embedding: EmbeddingResult | None,
    judge: JudgeResult | None,
    rubric: Rubric,
    weights: CombineSettings,
    *,
    fallback: bool = True,
) -> Combined:
    """The final score, status, per-point results and the weights used (with each component's score)."""
    if embedding is None and judge is None:
        raise ValueError("combine needs an embedding result, a judge result, or both")
    max_score = rubric.max_score
    emb = _rescale(embedding.score, embedding.max_score, max_score) if embedding is not None else None
    criteria = merge_criteria(rubric, embedding, judge)
    combination: dict[str, float] = {}
    if emb is not None:
        combination["embedding_score"] = round(emb, SCORE_DECIMALS)

    if judge is None or judge.status == "unscored":
        if judge is not None and not fallback:
            return Combined(None, "unscored", criteria, {**combination, "embedding": 0.0, "judge": 0.0})
        if emb is None:
            # A judge failure with no offline result to stand in: nothing to fall back to.
            return Combined(None, "unscored", criteria, {"embedding": 0.0, "judge": 0.0})
        status: GradeStatus = "graded" if judge is None else "fallback"
        combination.update({"embedding": 1.0, "judge": 0.0})
        return Combined(round(_clamp(emb, max_score), SCORE_DECIMALS), status, criteria, combination)

    assert judge.score is not None  # a scored JudgeResult always has one (validated by the model)
    jud = _rescale(judge.score, judge.max_score, max_score)
    combination["judge_score"] = round(jud, SCORE_DECIMALS)
    we, wj = weights.embedding_weight, weights.judge_weight
    if emb is None or we + wj <= 0:
        combination.update({"embedding": 0.0, "judge": 1.0})
        return Combined(round(_clamp(jud, max_score), SCORE_DECIMALS), "graded", criteria, combination)
    we, wj = we / (we + wj), wj / (we + wj)
    share = open_share(rubric, judge)
    score = float(judge_led(jud, emb, we, weights.band, share, max_score))
    combination.update(
        {
            "embedding": round(we, 6),
            "judge": round(wj, 6),
            "band": weights.band,
            "open": round(share, 6),
            "shift": round(score - jud, SCORE_DECIMALS),
        }
    )
    return Combined(round(score, SCORE_DECIMALS), "graded", criteria, combination)


def judge_warning(judge: JudgeResult | None, fallback: bool) -> str | None:
    """The warning a grade carries when the judge was asked but gave no verdict."""
    if judge is None or judge.status == "scored":
        return None
    reason = judge.error or "no reason given"
    if fallback:
        return f"judge unavailable: {reason}; offline score used"
    return f"judge unavailable: {reason}; no score (fallback disabled)"
