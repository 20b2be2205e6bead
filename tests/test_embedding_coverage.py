"""Per-point coverage and the feedback built from it, on hand-made rubrics and answers."""

from __future__ import annotations

import pytest

from grader.config import Settings
from grader.embedding.feedback import coverage_feedback
from grader.embedding.scorer import OfflineScorer
from grader.models import Criterion, Rubric


@pytest.fixture(scope="module")
def scorer(encoder) -> OfflineScorer:  # type: ignore[no-untyped-def]
    return OfflineScorer(Settings())


@pytest.fixture(scope="module")
def overfitting() -> Rubric:
    return Rubric(
        id="overfit",
        question="What is overfitting and how can you prevent it?",
        reference_answer=(
            "Overfitting is when a model memorises the training data, noise included, and performs poorly on new "
            "data. Regularisation such as L2 weight decay or dropout reduces it. Collecting more training data "
            "also helps. Early stopping halts training when validation loss starts rising."
        ),
        criteria=[
            Criterion(id="definition", text="The model memorises training data and fails to generalise to new data.",
                      weight=2),
            Criterion(id="regularisation", text="Regularisation such as L2 weight decay or dropout reduces it.",
                      weight=1),
            Criterion(id="more-data", text="Collecting more training data helps.", weight=1),
            Criterion(id="early-stopping", text="Early stopping halts training when validation loss rises.",
                      weight=1),
        ],
    )


CASES = [
    (
        "It is when the network memorises its training set and then does badly on new data. "
        "Adding dropout regularisation helps.",
        {"definition", "regularisation"},
    ),
    ("You can stop training early once the validation loss goes up, or collect more data.",
     {"early-stopping", "more-data"}),
    ("Use weight decay.", {"regularisation"}),
    ("Overfitting is bad and you should prevent it.", set()),
]


@pytest.mark.parametrize(("answer", "made"), CASES)
def test_coverage_picks_the_points_made(
    scorer: OfflineScorer, overfitting: Rubric, answer: str, made: set[str]
) -> None:
    result = scorer.score(overfitting, answer)
    covered = {c.id for c in result.coverage if c.covered}
    assert covered == made, {c.id: c.similarity for c in result.coverage}


def test_best_span_points_at_the_words_that_made_the_point(scorer: OfflineScorer, overfitting: Rubric) -> None:
    answer = (
        "Overfitting means the model memorised its training examples and fails on new data. "
        "Unrelated: I also like cooking pasta. A remedy is to stop training early when validation loss rises."
    )
    result = scorer.score(overfitting, answer)
    spans = {c.id: c.best_span or "" for c in result.coverage}
    assert "memoris" in spans["definition"]
    assert "stop training early" in spans["early-stopping"] or "validation loss" in spans["early-stopping"]
    assert "pasta" not in spans["definition"]
    assert all(s in answer for s in spans.values())


def test_feedback_names_made_and_missing_points(scorer: OfflineScorer, overfitting: Rubric) -> None:
    result = scorer.score(overfitting, CASES[0][0])
    fb = coverage_feedback(overfitting, result)
    assert len(fb.right) == 2 and len(fb.missing) == 2
    assert any("memorises training data" in s for s in fb.right)
    assert any("Early stopping" in s for s in fb.missing)
    assert any("more training data" in s for s in fb.missing)
    assert fb.suggestion is not None and fb.suggestion.startswith("Add that ")
    assert "2 of 4 key points made" in fb.text
    # Pure and deterministic: the same inputs give the same note.
    assert coverage_feedback(overfitting, result) == fb


def test_feedback_for_empty_answer(scorer: OfflineScorer, overfitting: Rubric) -> None:
    fb = coverage_feedback(overfitting, scorer.score(overfitting, ""))
    assert fb.right == []
    assert len(fb.missing) == 4
    # The heaviest missing point is suggested first.
    assert fb.suggestion is not None and "memorises training data" in fb.suggestion
    assert "does not address" in fb.text


def test_a_point_made_after_the_300th_word_is_covered(scorer: OfflineScorer, overfitting: Rubric) -> None:
    # The model reads 256 word pieces at a time; a long answer is read whole, in overlapping windows.
    preamble = " ".join(["Let me say a few general words about machine learning projects before answering."] * 30)
    late = "Early stopping halts training when the validation loss starts rising."
    answer = preamble + " " + late
    assert len(answer.split()) > 300 and answer.split().index("Early") > 300
    result = scorer.score(overfitting, answer)
    covered = {c.id: c for c in result.coverage}
    assert covered["early-stopping"].covered, covered["early-stopping"]
    assert late.split()[0] in (covered["early-stopping"].best_span or "")
    without = scorer.score(overfitting, preamble)
    assert not {c.id: c for c in without.coverage}["early-stopping"].covered


def test_small_talk_before_the_answer_weighs_as_little_as_after_it(offline_grader) -> None:  # type: ignore[no-untyped-def]
    # Beyond one encoder window the off-topic gates also read the answer's best stretch: 300 words of small talk
    # in front of the reference gated it to 2/5 while the same words after it did not.
    talk = " ".join(["The weather was pleasant and we walked along the river for a while."] * 22)
    ref = offline_grader.rubric("easy-2").reference_answer
    before = offline_grader.grade(talk + " " + ref, question_id="easy-2")
    after = offline_grader.grade(ref + " " + talk, question_id="easy-2")
    assert before.score is not None and after.score is not None
    assert before.score >= 4.0 and abs(before.score - after.score) <= 0.5, (before.score, after.score)
    alone = offline_grader.grade(talk, question_id="easy-2")
    assert alone.score is not None and alone.score <= 0.5


def test_a_contradicted_point_earns_nothing_and_quotes_the_clause(scorer: OfflineScorer, overfitting: Rubric) -> None:
    answer = "Collecting more training data never helps, and early stopping halts training when validation loss rises."
    result = {c.id: c for c in scorer.score(overfitting, answer).coverage}
    assert result["more-data"].contradicted and result["more-data"].coverage == 0.0
    assert result["more-data"].contradiction is not None and "never helps" in result["more-data"].contradiction
    assert not result["early-stopping"].contradicted and result["early-stopping"].covered
