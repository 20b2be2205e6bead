"""Accepted phrasings of a key point (Criterion.synonyms) earn credit offline: real model, shipped calibration."""

from __future__ import annotations

import pytest

from grader.config import Settings
from grader.embedding.scorer import OfflineScorer
from grader.models import Criterion, Rubric

QUESTION = "What is pruning in model compression?"
REFERENCE = (
    "Pruning is a technique used to reduce the size of a neural network by removing weights that are less "
    "important. This helps in reducing the model size and improving inference speed without significantly "
    "affecting the model's performance."
)
POINTS = (
    "Pruning is a technique used to reduce the size of a neural network by removing weights that are less important.",
    "Pruning helps in reducing the model size and improving inference speed without significantly affecting the "
    "model's performance.",
)
PHRASINGS = (
    ("Pruning shrinks a neural net by cutting away the connections that matter least.",
     "Pruning removes unimportant weights to make the network smaller."),
    ("The pruned model takes less memory and runs faster while its predictions stay about as accurate.",
     "A pruned model is smaller and faster with nearly the same accuracy."),
)
# Right, in words far from the reference's: no "weights", "size", "inference speed" or "performance".
PLAIN = (
    "You cut away the connections whose values contribute little, so the net takes less storage and answers "
    "faster, while its predictions stay about as good."
)


def _rubric(with_phrasings: bool) -> Rubric:
    return Rubric(
        id="easy-2", question=QUESTION, reference_answer=REFERENCE,
        criteria=[
            Criterion(id=f"c{k + 1}", text=text, weight=1.0, origin="human",
                      synonyms=list(PHRASINGS[k]) if with_phrasings else [])
            for k, text in enumerate(POINTS)
        ],
    )


@pytest.fixture(scope="module")
def scorer(encoder) -> OfflineScorer:  # type: ignore[no-untyped-def]
    return OfflineScorer(Settings())


def test_an_accepted_phrasing_earns_the_point_its_text_misses(scorer: OfflineScorer) -> None:
    # Same question and reference both times: the rubric cache must key on the phrasings too.
    plain = scorer.score(_rubric(False), PLAIN)
    accepted = scorer.score(_rubric(True), PLAIN)
    assert plain.coverage[0].similarity < accepted.coverage[0].similarity
    assert accepted.coverage[0].covered and accepted.coverage[1].covered
    assert accepted.score > plain.score


def test_an_accepted_phrasing_never_excuses_a_contradiction(scorer: OfflineScorer) -> None:
    negated = "Pruning makes the network larger and slower by adding connections, and the predictions get worse."
    for rubric in (_rubric(False), _rubric(True)):
        result = scorer.score(rubric, negated)
        assert all(c.contradicted for c in result.coverage)
        assert result.score <= 1.0


def test_phrasings_do_not_lift_an_answer_that_makes_no_point(scorer: OfflineScorer) -> None:
    vague = "It is a technique in machine learning."
    result = scorer.score(_rubric(True), vague)
    assert not any(c.covered for c in result.coverage)
    assert result.score <= 1.5


def test_evidence_is_where_the_matched_phrasing_was_found(scorer: OfflineScorer) -> None:
    answer = "Some background first. " + PLAIN
    result = scorer.score(_rubric(True), answer)
    for c in result.coverage:
        assert c.best_span and c.best_span in answer
        assert "background" not in c.best_span


def test_point_words_tell_a_wrong_answer_on_the_topic_from_a_paraphrase(scorer: OfflineScorer) -> None:
    # The contextual embeddings put "removing bad samples from the training data" near "removing weights from the
    # network"; the words do not: a paraphrase uses some phrasing's own words, the wrong answer almost none.
    wrong = ("Pruning is when you remove bad or duplicate samples from the training dataset before training, so "
             "the model does not learn from noisy data.")
    plain = scorer.analyse_many([(_rubric(True), PLAIN)])[0].signals
    off = scorer.analyse_many([(_rubric(True), wrong)])[0].signals
    assert plain["point_words_true"] > 2 * off["point_words_true"]
    # A point the answer contradicts counts nothing, however many of its words the answer repeats.
    stated, denied = scorer.analyse_many([
        (_rubric(True), "Pruning reduces the size of a neural network: it removes weights that are less important."),
        (_rubric(True), "Pruning does not reduce the size of a neural network: it adds weights that are less "
                        "important."),
    ])
    assert denied.matches[0].contradicted and not stated.matches[0].contradicted
    assert stated.signals["point_words_true"] - denied.signals["point_words_true"] >= 0.4
