"""Combine the offline scorer and the judge into one score and one list of per-point results. Pure.

The rules, so that a grade can be re-derived by hand from the recorded components:

- offline only (no judge): score = embedding score.
- judge scored: score = (we * embedding + wj * judge) / (we + wj), both on the rubric's scale; with no
  embedding result, or both weights zero, the judge's score alone.
- judge unscored and fallback allowed: status "fallback", score = embedding score.
- judge unscored and no fallback: status "unscored", score None.

Per key point, the judge's verdict (when it gave one) decides the credit via VERDICT_CREDIT; otherwise a point
the offline scorer found contradicted (negation, opposite direction, swapped role) is "contradicted" with no
credit and the contradicting clause as evidence, and any other point's status is read off the embedding coverage
with the thresholds below.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

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
        we, wj = 0.0, 1.0
    else:
        we, wj = we / (we + wj), wj / (we + wj)
    score = wj * jud + (we * emb if emb is not None else 0.0)
    combination.update({"embedding": round(we, 6), "judge": round(wj, 6)})
    return Combined(round(_clamp(score, max_score), SCORE_DECIMALS), "graded", criteria, combination)


def judge_warning(judge: JudgeResult | None, fallback: bool) -> str | None:
    """The warning a grade carries when the judge was asked but gave no verdict."""
    if judge is None or judge.status == "scored":
        return None
    reason = judge.error or "no reason given"
    if fallback:
        return f"judge unavailable: {reason}; offline score used"
    return f"judge unavailable: {reason}; no score (fallback disabled)"
