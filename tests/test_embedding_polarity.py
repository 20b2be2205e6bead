"""Polarity per key point: negation, opposite directions, swapped roles (grader/embedding/polarity.py). Pure."""

from __future__ import annotations

import pytest

from grader.embedding.polarity import active_roles, analyse, check_points, prepare_point
from grader.embedding.text import STOP_WORDS, stem, word_spans

PRUNING_Q = "What is pruning in model compression?"
PRUNING_REF = (
    "Pruning is a technique used to reduce the size of a neural network by removing weights that are less important. "
    "This helps in reducing the model size and improving inference speed without significantly affecting the "
    "model's performance."
)
C1 = "Pruning is a technique used to reduce the size of a neural network by removing weights that are less important."
C2 = ("Pruning helps in reducing the model size and improving inference speed without significantly affecting the "
      "model's performance.")

GEN_Q = "What are the key differences between discriminative and generative models?"
GEN_REF = ("Discriminative models learn the decision boundary between classes. Generative models learn the distribution "
           "of the data itself by modeling the joint probability, which allows sampling new data points.")
G1 = "Discriminative models learn the decision boundary between classes."
G2 = "Generative models learn the distribution of the data itself by modeling the joint probability."


def stances(question: str, reference: str, points: list[str], answer: str) -> list[str]:
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(question) if w not in STOP_WORDS)
    roles = active_roles(question, reference)
    prepared = [prepare_point(p, q_stems, roles) for p in points]
    return [c.stance for c in check_points(prepared, analyse(answer))]


def contradicting_clause(question: str, reference: str, point: str, answer: str) -> tuple[str, str]:
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(question) if w not in STOP_WORDS)
    check = check_points([prepare_point(point, q_stems, active_roles(question, reference))], analyse(answer))[0]
    assert check.stance == "contradict"
    return answer[check.start : check.end].strip(), check.cue


def test_a_negated_reference_contradicts_both_points_and_quotes_the_clause() -> None:
    answer = "Pruning does not reduce the size of a network and does not remove weights; it does not improve speed."
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer) == ["contradict", "contradict"]
    clause, cue = contradicting_clause(PRUNING_Q, PRUNING_REF, C1, answer)
    assert clause.startswith("Pruning does not reduce the size")
    assert "negates" in cue


def test_the_correct_answer_agrees() -> None:
    answer = ("Pruning removes the least important weights from a neural network, which makes the model smaller and "
              "faster at inference with little loss of accuracy.")
    assert "contradict" not in stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer)


def test_a_negative_point_is_matched_by_an_answer_that_keeps_the_negation() -> None:
    answer = "Pruning reduces the model size and improves inference speed without significantly affecting performance."
    assert stances(PRUNING_Q, PRUNING_REF, [C2], answer) == ["agree"]


def test_dropping_a_points_negation_in_a_paraphrase_is_not_a_contradiction() -> None:
    # "with little loss of accuracy" says what "without significantly affecting performance" says.
    answer = "It shrinks the model and speeds up inference, with little loss of accuracy."
    assert stances(PRUNING_Q, PRUNING_REF, [C2], answer) != ["contradict"]


def test_increase_against_reduce_is_a_contradiction() -> None:
    answer = "Pruning increases the size of a neural network by adding weights that are less important."
    clause, cue = contradicting_clause(PRUNING_Q, PRUNING_REF, C1, answer)
    assert "increase" in cue or "add" in cue
    assert clause.startswith("Pruning increases")


def test_slower_against_improving_speed_is_a_contradiction_even_in_a_negative_point() -> None:
    # C2 holds "without ...", but "improving inference speed" is stated plainly; "slows inference" denies it.
    answer = "Pruning makes the model larger, which slows inference speed."
    assert stances(PRUNING_Q, PRUNING_REF, [C2], answer) == ["contradict"]


def test_denying_the_opposite_agrees() -> None:
    answer = "Pruning does not add weights; it removes the less important weights to reduce the size of the network."
    assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["agree"]


def test_not_only_is_not_a_denial() -> None:
    answer = "Pruning not only reduces the size of a neural network but also removes weights that are less important."
    assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["agree"]


def test_swapped_roles_contradict_the_point() -> None:
    answer = ("Discriminative models learn the distribution of the data itself by modeling the joint probability. "
              "Generative models learn the decision boundary between classes.")
    assert stances(GEN_Q, GEN_REF, [G1, G2], answer) == ["contradict", "contradict"]
    _, cue = contradicting_clause(GEN_Q, GEN_REF, G2, answer)
    assert "discriminative" in cue and "generative" in cue


def test_each_role_with_its_own_claim_is_no_swap() -> None:
    answer = ("A discriminative model learns the boundary between the classes, while a generative model learns the "
              "distribution of the data itself through the joint probability.")
    assert "contradict" not in stances(GEN_Q, GEN_REF, [G1, G2], answer)


@pytest.mark.parametrize(
    ("point", "answer"),
    [
        # Mohler answers the old word-level rule misread: the point is negative around the shared word.
        ("Constructors do not have return type, but functions have to indicate a return type.",
         "Constructors cannot return values, so they cannot specify a return type."),
        ("If the recursion step is defined incorrectly, or if the base case is not included.",
         "No base case, so the recursion never stops."),
        ("It avoids making copies of large data structures when calling functions.",
         "It does not have to copy large amounts of data."),
    ],
)
def test_negative_points_agree_with_negative_answers(point: str, answer: str) -> None:
    assert stances("A question?", point, [point], answer) != ["contradict"]


def test_a_single_shared_word_in_a_long_clause_is_no_evidence() -> None:
    answer = "Quantization is a different method that stores the weights in fewer bits, and it is not pruning at all."
    assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) != ["contradict"]


def test_the_subject_of_a_denial_does_not_outvote_the_denied_word() -> None:
    # "prompts" stands before the negation in both: it is what the denial is about. The denied "tone" decides.
    q = "How can you control the style of generated content?"
    point = "Prompts set the desired tone."
    assert stances(q, point, [point], "Prompts never affect the tone of the output.") == ["contradict"]
    assert stances(q, point, [point], "Prompts set the tone you want.") == ["agree"]
    # A negative elsewhere in the answer's clause does not turn agreement on the point's own words into a denial.
    assert stances(q, point, [point], "Prompts set the tone, not the facts.") == ["agree"]


def test_a_second_subject_after_a_comma_starts_a_clause_so_swapped_frameworks_are_read() -> None:
    q = "What is the difference between TensorFlow and PyTorch?"
    ref = ("TensorFlow is a symbolic math library with high-level and low-level APIs. PyTorch is an open-source library "
           "based on Torch with a dynamic computation graph that makes it easier to debug.")
    points = ["TensorFlow is a symbolic math library.", "PyTorch is an open-source library based on the Torch library."]
    swapped = ("PyTorch is the symbolic math library with both APIs, and TensorFlow is the open-source library based "
               "on Torch.")
    assert stances(q, ref, points, swapped) == ["contradict", "contradict"]
    right = "TensorFlow is the symbolic math library, and PyTorch is the open-source library based on Torch."
    assert stances(q, ref, points, right) == ["agree", "agree"]


def test_a_property_given_to_the_other_entity_contradicts_the_point() -> None:
    # Two role pairs: the entity (GPT / BERT) and its property (unidirectional / bidirectional). Keeping the
    # property and swapping the entity is a contradiction of both points, though every word is the reference's.
    q = "Describe the architecture of GPT and how it differs from BERT."
    ref = ("GPT is a unidirectional transformer model that generates text by predicting the next word. BERT is a "
           "bidirectional model that considers both the left and right context of a word during training.")
    points = ["GPT is a unidirectional transformer model that generates text by predicting the next word.",
              "BERT is a bidirectional model that considers both the left and right context of a word."]
    swapped = ("BERT is the unidirectional model that generates text by predicting the next word, whereas GPT is "
               "bidirectional and considers both the left and right context of each word.")
    assert stances(q, ref, points, swapped) == ["contradict", "contradict"]
    _, cue = contradicting_clause(q, ref, points[0], swapped)
    assert "bert" in cue.lower() and "gpt" in cue.lower()
    right = ("GPT is the unidirectional model that generates text by predicting the next word, whereas BERT is "
             "bidirectional and considers both the left and right context of each word.")
    assert stances(q, ref, points, right) == ["agree", "agree"]
    both = "GPT is unidirectional while BERT is bidirectional, so BERT considers the left and right context of a word."
    assert "contradict" not in stances(q, ref, points, both)


def test_a_contradiction_where_the_encoder_found_the_point_outweighs_its_nouns_said_elsewhere() -> None:
    q = "What is the purpose of tokenization in NLP?"
    point = "Tokenization is the process of breaking down text into smaller units, such as words or subwords."
    answer = "Tokenization merges text into larger combined blocks. Smaller models then process the raw text directly."
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(q) if w not in STOP_WORDS)
    prepared = [prepare_point(point, q_stems, ())]
    clauses = analyse(answer)
    # Read alone, the second clause's "smaller ... process ... text" outweighs "merges ... larger".
    assert check_points(prepared, clauses)[0].stance == "agree"
    first = answer.index("merges"), answer.index(". ")
    check = check_points(prepared, clauses, [first])[0]
    assert check.stance == "contradict" and "where the point says" in check.cue
    # Aligned with the clause that agrees, the agreement stands.
    second = answer.index("Smaller models"), len(answer)
    assert check_points(prepared, clauses, [second])[0].stance == "agree"


def test_quantifiers_are_read_with_what_they_quantify() -> None:
    q = "What is pruning in model compression?"
    point = "By removing less important weights, the model becomes more efficient without affecting its accuracy."
    # "fewer parameters" and "more efficient" quantify different things; "a few" is not "fewer".
    assert stances(q, PRUNING_REF, [point], "Pruning removes weights, so the model has fewer parameters.") != ["contradict"]
    assert stances(q, PRUNING_REF, [point], "A few weights are removed and the model runs efficiently.") != ["contradict"]
    # the same quantified word, opposite quantifiers: a contradiction
    point = "A pruned network has fewer parameters and uses less memory."
    assert stances(q, PRUNING_REF, [point], "A pruned network has more parameters and uses more memory.") == ["contradict"]


def test_a_retraction_takes_back_what_was_said() -> None:
    # The reference said and then disowned: every point it made is withdrawn, the retraction quoted. "That" takes
    # back the sentence before it, so it is tried on a one-sentence answer.
    one = ("Pruning removes less important weights, which reduces the size of a network and improves inference "
           "speed without significantly affecting performance.")
    for head, tail in ((PRUNING_REF, "Everything I just wrote is wrong."), (PRUNING_REF, "Just kidding."),
                       (one, "But that is false.")):
        answer = head + " " + tail
        assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer) == ["contradict", "contradict"], tail
        clause, cue = contradicting_clause(PRUNING_Q, PRUNING_REF, C2, answer)
        assert clause.rstrip(".") == tail.rstrip(".") and "takes back" in cue


def test_that_is_false_takes_back_only_the_sentence_before_it() -> None:
    # Rebutting a myth is not disowning the answer: "that" points at the sentence just before it.
    answer = ("Pruning removes less important weights, which reduces the size of a network and improves inference "
              "speed. A common myth is that it always destroys accuracy. That is false.")
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer) == ["agree", "agree"]
    # and a wrong claim taken back, then the right one, is the right one
    answer = ("Pruning increases the size of a network. That is wrong: pruning removes less important weights, which "
              "reduces the size and improves inference speed.")
    assert "contradict" not in stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer)


@pytest.mark.parametrize("text", ["a label that is wrong", "the model is wrong", "it is wrong to prune", "that is true"])
def test_only_a_whole_clause_that_disowns_is_a_retraction(text: str) -> None:
    assert not any(c.retracts for c in analyse(text))


def test_a_point_stated_and_then_denied_is_contradicted_by_the_denial() -> None:
    # The answer's last word on a point counts: the reference followed by its own denial does not earn the point.
    answer = PRUNING_REF + " Pruning does not reduce the size of a network."
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], PRUNING_REF) == ["agree", "agree"]
    # C2 is negative ("without affecting performance"), but "reducing the model size" in it is stated plainly: the
    # denial denies it too.
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], answer) == ["contradict", "contradict"]
    for point in (C1, C2):
        clause, cue = contradicting_clause(PRUNING_Q, PRUNING_REF, point, answer)
        assert clause == "Pruning does not reduce the size of a network" and "after stating the point" in cue
    # a later denial about something the answer has not said is no denial of the point
    other = PRUNING_REF + " It does not reduce the size of the training data."
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], other) == ["agree", "agree"]


def test_a_denial_then_the_claim_keeps_the_point() -> None:
    # the other order: a wrong claim corrected, and a myth stated then rebutted, end agreeing
    corrected = ("Pruning does not reduce the size of a network. Actually it does reduce the size of a network by "
                 "removing less important weights.")
    myth = "Some think pruning makes a model larger, but it actually reduces its size by removing less important weights."
    for answer in (corrected, myth):
        assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["agree"], answer


def test_a_myth_rebutted_in_its_own_sentence_is_taken_back_and_not_the_sentence_before() -> None:
    # "that is a myth" inside a sentence takes back what that sentence said before it, not the answer's claim.
    answer = ("Pruning removes less important weights to reduce the size of a network. Some people think pruning does "
              "not reduce the size of a network, but that is a myth.")
    assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["agree"]


def test_a_later_contrast_with_another_thing_is_no_denial() -> None:
    # Mohler dev 4.4: one negated or opposite word about the *other* kind of array is a contrast, not a denial.
    q = "What is the difference between an array declared as static, and one that is not?"
    point = ("The arrays declared as static live throughout the life of the program; that is, they are initialized "
             "only once, when the function that declares the array it is first called.")
    for answer in (
        "When we declare it static the array is not destroyed after the function is over. When an array is not "
        "declared as static, the array is created and initialized every time a function calls it.",
        "a static array is allocated when the program starts and is freed when the program exits but has limited "
        "scope, while an array that is not declared static is allocated and freed when it comes into and out of scope.",
        "a static array has pre-runtime size and that size cannot be changed. A dynamic array gets its size at runtime.",
    ):
        assert stances(q, point, [point], answer) != ["contradict"], answer


@pytest.mark.parametrize("answer", ["Pruning makes a network either smaller or larger, it depends.",
                                    "Pruning can make a network smaller or larger depending on the method.",
                                    "Pruning makes the network smaller and/or larger."])
def test_hedging_between_the_points_two_directions_earns_no_credit(answer: str) -> None:
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(PRUNING_Q) if w not in STOP_WORDS)
    check = check_points([prepare_point(C1, q_stems, ())], analyse(answer))[0]
    assert check.stance == "contradict" and "offers both 'smaller' and 'larger'" in check.cue


@pytest.mark.parametrize(
    ("question", "point", "answer"),
    [
        # alternatives about something other than the point's direction, and the point's direction stated
        (PRUNING_Q, C1, "You can increase or decrease the learning rate as needed, and pruning removes less important "
                        "weights to reduce the size of the network."),
        # each direction paired with its own outcome: no hedge
        ("How can you control the style of generated content?",
         "Lower temperatures mean a more conservative and predictable token selection, and higher temperature allows "
         "more creative generation.",
         "Lower or raise the temperature to make output more predictable or more creative."),
        # "more or less" is "about", not two directions
        (PRUNING_Q, C2, "Pruning reduces the model size and improves inference speed with more or less the same "
                        "performance."),
    ],
)
def test_alternatives_that_do_not_hedge_the_point_are_no_evidence_against_it(question: str, point: str,
                                                                             answer: str) -> None:
    assert stances(question, PRUNING_REF if question == PRUNING_Q else point, [point], answer) != ["contradict"]


def test_less_important_is_unimportant_not_its_opposite() -> None:
    # C1 says "weights that are less important": "unimportant weights" says the same (answers.jsonl easy-2#10 and
    # holdout.jsonl medium-5#h1 were contradicted by it), "the least important weights" too.
    for answer in ("Pruning removes unimportant weights from the network.",
                   "Pruning removes the least important weights to shrink the network."):
        assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["agree"], answer
    # and a point that says "more important" is still contradicted by "less important"
    point = "Attention gives more important tokens a larger weight."
    assert stances("What does attention do?", point, [point], "Attention gives less important tokens a larger "
                   "weight.") == ["contradict"]


@pytest.mark.parametrize("answer", [
    "Pruning removes less important weights, which shrinks the model and speeds up inference without reducing "
    "accuracy much.",
    "Pruning removes less important weights and speeds up inference. It does not reduce performance.",
])
def test_denying_a_direction_of_another_object_is_no_denial_of_the_point(answer: str) -> None:
    # C2's "reducing" is about the model size; "without reducing accuracy" says what its negative part says. Both
    # answers had C2 contradicted ("negates 'reduce'") before the object of the denied word was read.
    assert stances(PRUNING_Q, PRUNING_REF, [C2], answer) != ["contradict"]


def test_denying_the_direction_of_the_points_own_object_still_contradicts() -> None:
    assert stances(PRUNING_Q, PRUNING_REF, [C1, C2], "Pruning does not reduce model size.") == ["contradict"] * 2
    # no object right after the denied word: a denial (answers.jsonl medium-1#7, a negated answer)
    q = "What is transfer learning in NLP?"
    point = ("Transfer learning in NLP leverages the knowledge gained from the large dataset to improve performance on "
             "the smaller dataset.")
    answer = ("Transfer learning does not use a pre-trained model and does not fine-tune on a task-specific dataset; "
              "it does not improve over training from scratch.")
    assert stances(q, point, [point], answer) == ["contradict"]


def test_a_hedge_where_the_encoder_found_the_point_hedges_it_when_it_is_about_the_rubrics_matter() -> None:
    # C2 shares no word with "the network" clause but its direction ("reducing the model size"): where the encoder
    # aligned C2 in that sentence, the hedge takes its credit too. A hedge about the learning rate does not, though
    # the encoder aligned C2 (which the answer does not make) there.
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(PRUNING_Q) if w not in STOP_WORDS)
    points = [prepare_point(p, q_stems, ()) for p in (C1, C2)]
    hedge = "Pruning makes a network either smaller or larger, it depends."
    span = hedge.index("or larger"), len(hedge)
    assert [c.stance for c in check_points(points, analyse(hedge))] == ["contradict", "none"]
    assert [c.stance for c in check_points(points, analyse(hedge), [(0, 10), span])] == ["contradict", "contradict"]
    other = ("Pruning removes less important weights, so the network gets smaller. Depending on the optimizer, you can "
             "increase or decrease the learning rate.")
    span = other.index("you can"), len(other)
    assert "contradict" not in [c.stance for c in check_points(points, analyse(other), [(0, 20), span])]


def test_a_hedge_naming_only_the_questions_subject_is_about_the_rubrics_matter() -> None:
    # "the model" and "pruning" are the question's words, no point's: the hedge is still about the question.
    q_stems = frozenset(stem(w) for w, _, _ in word_spans(PRUNING_Q) if w not in STOP_WORDS)
    points = [prepare_point(p, q_stems, ()) for p in (C1, C2)]
    hedge = "Pruning either makes the model smaller or larger, it depends."
    spans = [(0, len(hedge)), (0, len(hedge))]
    assert [c.stance for c in check_points(points, analyse(hedge), spans)] == ["contradict", "contradict"]
    # the same words without the hedge agree
    plain = "Pruning makes the model smaller."
    assert "contradict" not in [c.stance for c in check_points(points, analyse(plain), [(0, 31), (0, 31)])]


def test_a_swap_is_seen_when_the_point_also_names_both_sides_of_another_pair() -> None:
    # "input ... output" is part of the supervised point's claim, not whom it is about: it must not hide that the
    # clause gives the point's property to unsupervised learning.
    q = "What is the difference between supervised and unsupervised learning?"
    c1 = ("Supervised learning involves training a model on labeled data, where the input data is paired with the "
          "correct output.")
    c2 = ("Unsupervised learning involves training a model on unlabeled data, where the model tries to find patterns "
          "and relationships within the data without any explicit guidance.")
    reference = f"{c1} {c2}"
    swapped = ("Supervised learning trains on unlabeled data and finds patterns on its own; unsupervised learning uses "
               "labeled data where each input has the correct output.")
    assert stances(q, reference, [c1, c2], swapped) == ["contradict", "contradict"]
    right = ("Supervised learning trains on labeled data where each input has the correct output; unsupervised "
             "learning uses unlabeled data and finds patterns on its own.")
    assert stances(q, reference, [c1, c2], right) == ["agree", "agree"]


GPT_BERT_Q = "What is the difference between GPT and BERT?"
GPT_C1 = ("GPT (Generative Pre-trained Transformer) is a unidirectional transformer model that generates text by "
          "predicting the next word in a sequence.")
BERT_C3 = ("BERT (Bidirectional Encoder Representations from Transformers) is a bidirectional model that considers "
           "both the left and right context of a word during training.")


def test_swapped_roles_contradict_however_few_other_words_the_clause_repeats() -> None:
    q, c1, c3 = GPT_BERT_Q, GPT_C1, BERT_C3
    reference = f"{c1} {c3}"
    swapped = ("BERT is unidirectional and predicts the next word from left to right, while GPT is bidirectional and "
               "uses context on both sides.")
    assert stances(q, reference, [c1, c3], swapped) == ["contradict", "contradict"]
    right = ("GPT is unidirectional and predicts the next word from left to right, while BERT is bidirectional and "
             "uses context on both sides.")
    assert "contradict" not in stances(q, reference, [c1, c3], right)
    # both roles of a pair in one clause ("unlike GPT") swap nothing
    unlike = "BERT, unlike GPT, is bidirectional."
    assert "contradict" not in stances(q, reference, [c1, c3], unlike)


def test_a_swap_followed_by_agreement_is_read_to_the_end() -> None:
    # The swap's cue once reused the name of the set of words agreeing with the point, and the agreement after it
    # crashed the scorer (TypeError) on answers like this one.
    q, c1, c3 = GPT_BERT_Q, GPT_C1, BERT_C3
    answer = ("BERT is unidirectional, while GPT is bidirectional. GPT is a transformer model that generates text by "
              "predicting the next word in a sequence.")
    # GPT's point: swapped in the first clause, then stated: the answer's last word on it is the agreement.
    assert stances(q, f"{c1} {c3}", [c1, c3], answer)[0] == "agree"


TRANSFER_Q = "Explain the concept of transfer learning in NLP."
TRANSFER_REF = ("Transfer learning in NLP involves taking a pre-trained model on a large dataset and fine-tuning it on a "
                "smaller, task-specific dataset. It often leads to better results than training from scratch.")
TRANSFER_C1 = ("Transfer learning in NLP involves taking a pre-trained model on a large dataset and fine-tuning it on a "
               "smaller, task-specific dataset.")
TRANSFER_C3 = "Transfer learning in NLP often leads to better results than training from scratch."


def test_a_quantifier_is_read_as_the_direction_of_the_amount_it_quantifies() -> None:
    point = "Pruning improves model performance by reducing the number of parameters in the neural network."
    # "more parameters" is the opposite direction of "reducing the number of parameters" ...
    assert stances(PRUNING_Q, PRUNING_REF, [point], "Pruning makes the network wider, so there are more parameters "
                                                    "in the neural network.") == ["contradict"]
    # ... "fewer parameters" the same direction, and "more efficient" says nothing about parameters.
    assert stances(PRUNING_Q, PRUNING_REF, [point], "Pruning leaves fewer parameters in the neural network.") == ["agree"]
    assert stances(PRUNING_Q, PRUNING_REF, [point], "Pruning removes parameters of the neural network and makes "
                                                    "it more efficient.") != ["contradict"]


def test_a_denial_after_its_subject_denies_the_subject() -> None:
    q = "Explain the process of text classification using a pre-trained model."
    ref = "Tokenize the input text. Evaluate the model's performance using appropriate metrics."
    point = "Evaluate the model's performance using appropriate metrics."
    for answer in ("Evaluating the performance with metrics is skipped.",
                   "Evaluating the performance with metrics isn't part of the process."):
        assert stances(q, ref, [point], answer) == ["contradict"], answer
    assert stances(q, ref, [point], "Evaluating the performance with metrics is the last step.") == ["agree"]


def test_an_omission_in_a_condition_denies_nothing() -> None:
    q = "What are the similarities between iteration and recursion?"
    ref = "They both involve repetition; they both have termination tests; they can both occur infinitely."
    answer = ("Both may go into a condition of infinite execution if a termination test is omitted, and both "
              "involve repetition.")
    assert stances(q, ref, [ref], answer) != ["contradict"]


def test_a_denial_ends_where_a_second_thing_is_named() -> None:
    q = "When defining a recursive function, what are possible causes for infinite recursion?"
    point = "If the recursion step is defined incorrectly, or if the base case is not included."
    answer = "No base case, or an incorrectly written recursion step that does not converge on the base case."
    assert stances(q, point, [point], answer) != ["contradict"]


def test_a_directional_claim_is_contradicted_when_no_clause_states_its_direction() -> None:
    # The agreeing clause only repeats what the claim is compared with ("training from scratch"); the direction of
    # the claim ("better results") is reversed elsewhere.
    answer = "You train a fresh model from scratch on your small dataset, and results are typically worse."
    assert stances(TRANSFER_Q, TRANSFER_REF, [TRANSFER_C3], answer) == ["contradict"]
    assert stances(TRANSFER_Q, TRANSFER_REF, [TRANSFER_C3], "It gives better results than training from scratch, "
                                                             "and training is faster.") == ["agree"]


def test_a_synonym_of_a_direction_the_point_states_is_no_contradiction() -> None:
    # The point says "large" of one dataset and "smaller" of the other: "big" is its "large", not a denial of
    # "smaller".
    answer = "Pre-train on a big dataset, then fine-tune on the specific task."
    assert stances(TRANSFER_Q, TRANSFER_REF, [TRANSFER_C1], answer) != ["contradict"]


def test_a_new_clause_after_a_spaced_dash_is_read_on_its_own() -> None:
    q, c1, c3 = GPT_BERT_Q, GPT_C1, BERT_C3
    answer = ("GPT is the bidirectional one — it reads both sides of every word — and BERT is the strictly "
              "unidirectional model that generates text by predicting the next word.")
    assert stances(q, f"{c1} {c3}", [c1, c3], answer) == ["contradict", "contradict"]


def test_a_role_named_earlier_is_not_carried_into_a_clause_about_something_else() -> None:
    q = "How can you control the style of generated content?"
    ref = ("Lower temperature makes the output more predictable. Style transfer applies the style of a reference "
           "image to an input image during inference.")
    point = "Style transfer applies the style of a reference image to an input image during inference."
    answer = ("Lower the temperature to make the output more predictable; for images, apply style transfer from a "
              "reference image.")
    assert stances(q, ref, [point], answer) != ["contradict"]


def test_hard_is_a_denial_only_as_hard_to() -> None:
    q = "Explain the concept of model distillation."
    point = "The student is trained on the teacher's soft labels."
    # "hard labels" are labels: no denial of them
    assert stances(q, point, [point], "The student is trained on the teacher's hard labels.") == ["agree"]
    # "hard to" still reads as a soft denial of what follows it
    assert stances(q, point, [point], "It is hard to train the student on soft labels.") == ["contradict"]


def test_it_is_not_true_that_denies_the_whole_claim_after_it() -> None:
    # The cue's usual eight-word scope stopped inside a long claim, leaving "removing weights that are less
    # important" stated plainly: the reference behind "It is not true that" scored 5/5.
    for prefix in ("It is not true that", "It's false that", "But it is not the case that"):
        answer = f"{prefix} pruning is a technique used to reduce the size of a neural network by removing weights " \
                 "that are less important."
        assert stances(PRUNING_Q, PRUNING_REF, [C1], answer) == ["contradict"], prefix
    assert stances(PRUNING_Q, PRUNING_REF, [C1], "It is true that pruning is a technique used to reduce the size of "
                                                 "a neural network by removing weights that are less important.") \
        == ["agree"]
    # Only its own clause: what comes after "but" is said plainly.
    assert stances(PRUNING_Q, PRUNING_REF, [C1], "It is not true that pruning adds weights, but it reduces the size "
                                                 "of a neural network by removing less important weights.") == ["agree"]
