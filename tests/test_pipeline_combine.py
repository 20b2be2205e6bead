"""combine() and compose_feedback(): pure rules, checked on hand-built inputs."""

from __future__ import annotations

import pytest

from grader.config import CombineSettings
from grader.models import (
    Criterion,
    CriterionCoverage,
    CriterionVerdict,
    EmbeddingResult,
    JudgeResult,
    Rubric,
)
from grader.pipeline.combine import combine, judge_warning
from grader.pipeline.feedback import compose_feedback


def _rubric() -> Rubric:
    return Rubric(
        id="q1",
        question="What is pruning?",
        reference_answer="Pruning removes unimportant weights. It makes models smaller and faster.",
        criteria=[
            Criterion(id="c1", text="Pruning removes the least important weights", weight=2),
            Criterion(id="c2", text="The model becomes smaller", weight=1),
            Criterion(id="c3", text="Inference becomes faster", weight=1),
        ],
    )


def _emb(score: float = 3.0, cov: tuple[float, float, float] = (0.9, 0.5, 0.1)) -> EmbeddingResult:
    return EmbeddingResult(
        score=score,
        max_score=5.0,
        signals={"sim": 0.8},
        coverage=[
            CriterionCoverage(id=f"c{i + 1}", similarity=c, coverage=c, covered=c >= 0.75, best_span=f"span{i}")
            for i, c in enumerate(cov)
        ],
        model="m",
        calibration="test",
    )


def _judge(score: float | None = 4.0, verdicts: dict[str, str] | None = None, max_score: float = 5.0) -> JudgeResult:
    common = dict(max_score=max_score, prompt_version="v1", prompt_hash="h", model="llm", backend="openai")
    if score is None:
        return JudgeResult(status="unscored", error="timeout after 3 retries", **common)
    vs = [CriterionVerdict(id=k, verdict=v, comment=f"note {k}") for k, v in (verdicts or {}).items()]
    return JudgeResult(status="scored", score=score, verdicts=vs, feedback="Good start. More detail.", **common)


W = CombineSettings(embedding_weight=0.3, judge_weight=0.7)


def test_offline_only_uses_embedding_score_and_coverage_status() -> None:
    out = combine(_emb(3.25), None, _rubric(), W)
    assert out.score == 3.25 and out.status == "graded"
    assert out.combination == {"embedding_score": 3.25, "embedding": 1.0, "judge": 0.0}
    assert [c.status for c in out.criteria] == ["met", "partial", "missed"]
    assert [c.weight for c in out.criteria] == [0.5, 0.25, 0.25]
    assert out.criteria[0].evidence == "span0" and out.criteria[0].verdict is None


def test_judge_and_embedding_mix_with_configured_weights() -> None:
    out = combine(_emb(3.0), _judge(4.0), _rubric(), W)
    assert out.status == "graded"
    assert out.score == pytest.approx(0.3 * 3.0 + 0.7 * 4.0)
    assert out.combination["embedding"] == 0.3 and out.combination["judge"] == 0.7
    assert out.combination["judge_score"] == 4.0 and out.combination["embedding_score"] == 3.0
    # Weights are normalised, so (1, 1) means an even mix.
    even = combine(_emb(3.0), _judge(4.0), _rubric(), CombineSettings(embedding_weight=1, judge_weight=1))
    assert even.score == 3.5


def test_judge_on_another_scale_is_rescaled() -> None:
    out = combine(None, _judge(8.0, max_score=10.0), _rubric(), W)
    assert out.score == 4.0 and out.combination["judge"] == 1.0


def test_verdicts_override_coverage_per_criterion() -> None:
    out = combine(_emb(), _judge(3.0, {"c1": "contradicted", "c3": "met"}), _rubric(), W)
    c1, c2, c3 = out.criteria
    assert (c1.status, c1.credit, c1.coverage, c1.comment) == ("contradicted", 0.0, 0.9, "note c1")
    assert (c2.status, c2.verdict, c2.credit) == ("partial", None, 0.5)  # no verdict: coverage decides
    assert (c3.status, c3.credit) == ("met", 1.0)


def test_unscored_judge_falls_back_flagged() -> None:
    j = _judge(None)
    out = combine(_emb(2.5), j, _rubric(), W)
    assert out.status == "fallback" and out.score == 2.5
    assert judge_warning(j, True) == "judge unavailable: timeout after 3 retries; offline score used"
    assert judge_warning(_judge(4.0), True) is None


def test_unscored_judge_without_fallback_has_no_score() -> None:
    out = combine(_emb(2.5), _judge(None), _rubric(), W, fallback=False)
    assert out.status == "unscored" and out.score is None
    # Per-point coverage is still reported, so the candidate learns something.
    assert [c.status for c in out.criteria] == ["met", "partial", "missed"]


def test_combine_needs_a_component() -> None:
    with pytest.raises(ValueError):
        combine(None, None, _rubric(), W)


def test_feedback_reads_as_one_note() -> None:
    out = combine(_emb(), _judge(3.0, {"c3": "contradicted"}), _rubric(), W)
    fb = compose_feedback(out.criteria, out.score, 5.0, judge_feedback="Good start. More detail.")
    assert out.score == 3.0 and fb.text.startswith("Score 3.0/5. ")
    assert "You covered: pruning removes the least important weights." in fb.text
    assert "Missing: the model becomes smaller (only partly)." in fb.text
    assert "Wrong: inference becomes faster (note c3)." in fb.text
    assert fb.suggestion is not None and "inference becomes faster" in fb.suggestion
    assert fb.right == ["Pruning removes the least important weights"]
    assert fb.wrong == ["Inference becomes faster"]


def test_feedback_suggests_heaviest_missing_point_and_handles_no_score() -> None:
    crit = combine(_emb(cov=(0.1, 0.9, 0.9)), None, _rubric(), W).criteria
    fb = compose_feedback(crit, None, 5.0, unscored_reason="judge unavailable")
    assert fb.text.startswith("No score (judge unavailable).")
    assert fb.suggestion == "Add a sentence that makes this point explicitly: pruning removes the least important weights."
    full = combine(_emb(cov=(0.9, 0.9, 0.9)), None, _rubric(), W).criteria
    fb2 = compose_feedback(full, 5.0, 5.0, judge_feedback="Excellent. Nothing to add.")
    assert fb2.missing == [] and fb2.suggestion == "Excellent."
    assert fb2.text.startswith("Score 5.0/5. You covered: ")


def test_judge_leads_the_embedding_moves_it_within_the_band() -> None:
    w = CombineSettings(embedding_weight=0.3, judge_weight=0.7, band=0.1)
    # No verdicts: every point open (open 1), limit 0.1 x 1 x 5 = 0.5 points.
    out = combine(_emb(5.0), _judge(1.0), _rubric(), w)
    assert out.score == pytest.approx(1.5)  # 1 + min(0.3 x 4, 0.5)
    assert out.combination["open"] == 1.0 and out.combination["shift"] == pytest.approx(0.5)
    assert out.combination["band"] == 0.1
    # c1 (half the weight) settled as missed: half the band is left.
    half = combine(_emb(5.0), _judge(1.0, {"c1": "missed"}), _rubric(), w)
    assert half.combination["open"] == 0.5 and half.score == pytest.approx(1.25)
    # Band 1 with every point open is the plain weighted mean.
    plain = combine(_emb(5.0), _judge(1.0), _rubric(), CombineSettings(band=1.0))
    assert plain.score == pytest.approx(0.3 * 5 + 0.7 * 1)


def test_clear_verdicts_on_every_point_decide_the_grade() -> None:
    verdicts = {"c1": "contradicted", "c2": "missed", "c3": "met"}
    out = combine(_emb(4.8), _judge(1.2, verdicts), _rubric(), CombineSettings(band=1.0))
    assert out.score == 1.2 and out.combination["open"] == 0.0 and out.combination["shift"] == 0.0
    # A partial verdict leaves its point open to the embedding.
    part = combine(_emb(4.8), _judge(1.2, {**verdicts, "c3": "partial"}), _rubric(), CombineSettings(band=1.0))
    assert part.combination["open"] == 0.25 and 1.2 < part.score <= 1.2 + 0.25 * 5


def test_contradicted_or_missed_points_are_never_lifted_by_coverage() -> None:
    out = combine(_emb(5.0, cov=(0.95, 0.95, 0.95)), _judge(0.0, {"c1": "contradicted", "c2": "missed"}), _rubric(), W)
    c1, c2, c3 = out.criteria
    assert (c1.credit, c1.status) == (0.0, "contradicted") and (c2.credit, c2.status) == (0.0, "missed")
    assert c3.verdict is None and c3.status == "met"  # no verdict: coverage decides this one
