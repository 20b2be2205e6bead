"""Statement signals: function words, word-class order, claims (grader/embedding/claims.py). Pure."""

from __future__ import annotations

import random

import pytest

from grader.embedding.calibration import ramp
from grader.embedding.claims import (
    claim_share,
    fluency,
    function_ratio,
    listed_claims,
    statement_signals,
    states_something,
)
from grader.embedding.signals import statement_score
from grader.embedding.text import word_spans

SENTENCE = ("Pruning is a technique used to reduce the size of a neural network by removing weights that are less "
            "important, which makes inference faster.")


def score(text: str, lex_precision: float = 0.3) -> float:
    return statement_score(statement_signals(text), len(word_spans(text)), lex_precision)


def test_a_keyword_list_has_almost_no_function_words_and_is_no_statement() -> None:
    stuffed = "pruning weights remove less important smaller model inference speed performance neural network"
    assert function_ratio(stuffed) < 0.05 < 0.25 < function_ratio(SENTENCE)
    assert claim_share(stuffed) < 0.5 < claim_share(SENTENCE)
    assert score(stuffed) == 0.0
    assert score(SENTENCE) == 1.0


def test_shuffled_words_read_less_fluently_than_the_sentence() -> None:
    rng = random.Random(1)
    words = SENTENCE.split()
    shuffled = []
    for _ in range(50):
        rng.shuffle(words)
        shuffled.append(fluency(" ".join(words)))
    assert sum(shuffled) / len(shuffled) < fluency(SENTENCE) - 0.2


def test_a_shuffled_reference_is_no_statement_when_its_words_are_the_references() -> None:
    rng = random.Random(3)
    words = SENTENCE.split()
    salads = []
    for _ in range(30):
        rng.shuffle(words)
        salads.append(score(" ".join(words), lex_precision=1.0))
    assert sum(salads) / len(salads) < 0.3
    assert score(SENTENCE, lex_precision=1.0) == 1.0  # the reference itself, in order, is a statement


def test_terse_answers_are_answers_not_keyword_lists() -> None:
    for terse in ("push, pop and peek", "the main function", "memory location"):
        assert score(terse) == 1.0


def test_a_keyword_list_inside_a_sentence_frame_is_no_statement() -> None:
    # The frame has function words and a verb, so function_ratio and fluency pass it: the bare items do not.
    framed = ("Regarding pruning there are concepts such as weights, sparsity, size, speed, accuracy, neurons, layers, "
              "magnitude and fine-tuning.")
    assert function_ratio(framed) > 0.08 and fluency(framed) > -0.3  # what the older signals let through
    assert statement_signals(framed)["list_share"] >= 0.35
    assert score(framed) < 0.5


def test_an_answer_listing_its_points_as_phrases_stays_a_statement() -> None:
    # Items with a determiner inside are verb phrases (actions stated), and items of four words or more are claims.
    steps = "Oversample the minority class, undersample the majority class, weight the loss, and use the F1 score."
    challenges = ("The main challenges are the high computational cost of training, unstable adversarial training, "
                  "no reliable metric for quality, and biases copied from the training data.")
    values = "A variable holds a value of its type, for example an int can hold 1, 2, 3, 4, 68 or 256."
    for text in (steps, challenges, values):
        assert statement_signals(text)["list_share"] < 0.35, text
        assert score(text) == 1.0, text


BULLETS = "- removes less important weights\n- reduces model size\n- speeds up inference\n- keeps accuracy about the same"
TERSE_BULLETS = "- removes weights\n- reduces size\n- speeds inference\n- keeps accuracy"


@pytest.mark.parametrize("text", [BULLETS, TERSE_BULLETS, "* removes low-magnitude weights\n* reduces model size\n"
                                  "* faster inference\n* smaller model", "1. removes weights\n2) shrinks the model"])
def test_bullets_that_state_things_are_claims_not_bare_items(text: str) -> None:
    # Suffix classes read "removes" and "weights" alike (S): the verb is read from its place, first with an object.
    stm = statement_signals(text)
    assert stm["listed_claims"] >= 0.75, text
    assert stm["list_share"] == 0.0, text


@pytest.mark.parametrize("text", [
    "- pruning\n- weights\n- sparsity\n- model size\n- inference speed\n- compression",
    "- labeled data\n- hidden layers\n- random forest\n- large dataset\n- model compression\n- inference speed",
])
def test_bullets_that_name_terms_are_still_a_keyword_list(text: str) -> None:
    stm = statement_signals(text)
    assert stm["listed_claims"] == 0.0
    assert stm["list_share"] >= 0.6
    assert score(text) == 0.0


def test_a_keyword_list_on_one_line_and_a_shuffled_reference_stay_gated() -> None:
    keywords = "pruning, weights, sparsity, model size, inference speed, compression, accuracy"
    assert listed_claims(keywords) == 0.0 and score(keywords) == 0.0
    shuffled = " ".join(random.Random(5).sample(SENTENCE.split(), len(SENTENCE.split())))
    assert listed_claims(shuffled) == 0.0


@pytest.mark.parametrize(("item", "claim"), [
    ("removes less important weights", True), ("reduces model size", True), ("faster inference", True),
    ("keeps the accuracy", True), ("random forest", False), ("large dataset", False), ("hidden layers", False),
    ("model size", False), ("weights", False), ("inference speed", False),
])
def test_what_states_something(item: str, claim: bool) -> None:
    assert states_something(item.split()) is claim


def test_an_enumeration_of_claims_on_one_line_is_listed_claims_and_one_of_terms_is_not() -> None:
    claims = "Pruning: removes less important weights, reduces model size, speeds up inference, keeps accuracy."
    assert listed_claims(claims) >= 0.9
    assert statement_signals(claims)["list_share"] == 0.0
    framed = ("Regarding pruning there are concepts such as weights, sparsity, size, speed, accuracy, neurons, layers, "
              "magnitude and fine-tuning.")
    assert listed_claims(framed) == 0.0
    # a sentence without a list is no list, whatever it says
    assert listed_claims(SENTENCE) == 0.0


@pytest.mark.parametrize("text", [
    TERSE_BULLETS,
    "Pruning: removes less important weights, reduces model size, speeds up inference, keeps accuracy.",
])
def test_telegraphic_claims_pass_the_statement_gate(text: str) -> None:
    # No function words and a disfluent word order, which alone would gate it as a keyword list.
    stm = statement_signals(text)
    assert min(ramp(stm["function_ratio"], 0.02, 0.08), ramp(stm["fluency"], -0.45, -0.3)) < 1.0, text
    assert score(text) == 1.0, text
