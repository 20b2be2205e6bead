"""The deterministic builder: one idea per point, nothing lost, filler dropped, sensible weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.bank.loader import load_bank
from grader.models import Question
from grader.rubric.deterministic import (
    build_criteria,
    build_rubric,
    clean_sentence,
    normalise_weights,
    resolve_reference,
    split_sentences,
)
from grader.rubric.quality import coverage
from grader.rubric.store import load_rubrics


@pytest.fixture(scope="module")
def seed_questions(seed_bank_path: Path) -> dict[str, Question]:
    return {q.id: q for q in load_bank(seed_bank_path, "interview").questions}


def _texts(q: Question) -> list[str]:
    return [c.text for c in build_rubric(q).criteria]


def test_no_idea_lost_on_any_seed_question(seed_questions: dict[str, Question]) -> None:
    assert len(seed_questions) == 22
    for q in seed_questions.values():
        cov = coverage(build_rubric(q))
        assert cov.ratio >= 0.9, (q.id, cov.lost)


def test_committed_rubrics_are_what_the_builder_makes(repo_root: Path, seed_questions: dict[str, Question]) -> None:
    """rubrics/interview/ is the builder's output for the seed (rebuild it if the builder changes), plus the
    accepted phrasings a person added to each point (which mark the point as edited by hand, so a rebuild keeps
    it)."""
    for r in load_rubrics(repo_root / "rubrics" / "interview"):
        built = build_rubric(seed_questions[r.id])
        bare = r.model_copy(update={"criteria": [c.model_copy(update={"synonyms": []}) for c in r.criteria]})
        assert bare == built, r.id
        for c in r.criteria:
            assert c.edited_by_hand == bool(c.synonyms), (r.id, c.id)


def test_deterministic(seed_questions: dict[str, Question]) -> None:
    q = seed_questions["genai-3"]
    assert build_rubric(q) == build_rubric(q)


def test_weights_sum_to_one_and_are_positive(seed_questions: dict[str, Question]) -> None:
    for q in seed_questions.values():
        weights = [c.weight for c in build_rubric(q).criteria]
        assert all(w > 0 for w in weights), q.id
        assert round(sum(weights), 6) == 1.0, q.id
        assert all(round(w, 2) == w for w in weights)


def test_fingerprints_match_content(seed_questions: dict[str, Question]) -> None:
    for c in build_rubric(seed_questions["hard-4"]).criteria:
        assert c.fingerprint == c.content_hash() and not c.edited_by_hand and c.origin == "auto"
        assert c.levels is not None and c.levels.full and c.levels.partial and c.levels.none


def test_bullets_are_one_point_each_and_intro_is_context(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["medium-6"])
    assert texts == [
        "Removing rows or columns with missing values.",
        "Imputing missing values using statistical methods like mean, median, or mode.",
        "Using algorithms that support missing values, such as decision trees.",
        "Applying advanced imputation techniques like K-Nearest Neighbors (KNN) or regression imputation.",
    ]
    levels = build_rubric(seed_questions["medium-6"]).criteria[0].levels
    assert levels is not None and "Handling missing data can be done using several techniques" in (levels.full or "")
    assert len(_texts(seed_questions["hard-6"])) == 5  # five numbered steps, the intro dropped
    assert not any(t.lower().startswith("the benefits") for t in _texts(seed_questions["hard-5"]))


def test_list_intro_with_best_practices_is_dropped(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["genai-4"])
    assert not any("best practices" in t.lower() for t in texts)
    assert texts[2].startswith("Be clear and concise: Provide specific instructions")


def test_fragment_joins_its_neighbour(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["genai-4"])
    assert any(t.endswith("Be straightforward and to-the-point.") and t.startswith("Be clear and concise") for t in texts)
    assert "Be straightforward and to-the-point." not in texts


def test_benefit_list_split_into_one_point_per_benefit(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["hard-3"])
    assert "The benefits of model distillation include faster inference times." in texts
    assert "The benefits of model distillation include reduced memory usage." in texts
    assert (
        "The benefits of model distillation include the ability to deploy models on resource-constrained devices."
        in texts
    )


def test_two_claims_joined_by_and_can_are_split(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["medium-2"])
    assert "Quantization reduces the model size." in texts
    assert "Quantization can speed up inference by allowing the use of more efficient hardware operations." in texts


def test_pronouns_resolved_and_connectives_dropped(seed_questions: dict[str, Question]) -> None:
    easy1 = _texts(seed_questions["easy-1"])
    assert "TensorFlow allows for both high-level and low-level API." in easy1
    assert any(t.startswith("PyTorch is an open-source machine learning library") for t in easy1)
    assert not any("on the other hand" in t for t in easy1)
    genai1 = _texts(seed_questions["genai-1"])
    assert "Discriminative models focus on distinguishing between different categories." in genai1
    assert _texts(seed_questions["hard-1"])[1] == "GPT is trained using a left-to-right context."


def test_labelled_bullet_sentences_keep_their_label(seed_questions: dict[str, Question]) -> None:
    texts = _texts(seed_questions["genai-2"])
    assert "Data requirements: The collection of such data could be time-consuming and expensive." in texts
    genai3 = _texts(seed_questions["genai-3"])
    assert "Fine-tuning means training the model further on additional data to learn additional specific styles or " \
           "attributes." in genai3


def test_keywords_are_salient(seed_questions: dict[str, Question]) -> None:
    r = build_rubric(seed_questions["medium-2"])
    assert {"32-bit", "8-bit"} <= set(r.criteria[0].keywords)
    r = build_rubric(seed_questions["hard-1"])
    assert "bidirectional" in r.criteria[2].keywords
    assert "left-to-right" in r.criteria[1].keywords
    r = build_rubric(seed_questions["medium-6"])
    assert "KNN" in r.criteria[3].keywords
    for q in seed_questions.values():
        question_words = set(q.question.lower().replace("?", " ").split())
        for c in build_rubric(q).criteria:
            assert 1 <= len(c.keywords) <= 5, (q.id, c.id)
            assert not (set(k.lower() for k in c.keywords) & question_words), (q.id, c.keywords)


def test_weight_reflects_content(seed_questions: dict[str, Question]) -> None:
    """A long point with many terms outweighs a short one."""
    r = build_rubric(seed_questions["easy-1"])
    by_text = {c.text: c.weight for c in r.criteria}
    assert by_text["TensorFlow allows for both high-level and low-level API."] < max(by_text.values())


def test_sentence_split_keeps_abbreviations() -> None:
    assert split_sentences("Use ensembles (e.g. Random Forest). Then stop. Label y, given x. Next one.") == [
        "Use ensembles (e.g. Random Forest).",
        "Then stop.",
        "Label y, given x.",
        "Next one.",
    ]


def test_clean_sentence_removes_connectives() -> None:
    assert clean_sentence("PyTorch, on the other hand, is dynamic.") == "PyTorch is dynamic."
    assert clean_sentence("However, it fails.") == "It fails."


def test_resolve_reference_leaves_expletive_it() -> None:
    assert resolve_reference("It's challenging to assess outputs.", "Evaluation") == "It's challenging to assess outputs."
    assert resolve_reference("It is used to predict words.", "A language model") == (
        "A language model is used to predict words."
    )
    assert resolve_reference("This allows BERT to see more.", "BERT") == "This allows BERT to see more."


def test_normalise_weights() -> None:
    assert normalise_weights([1, 1, 1]) == [0.34, 0.33, 0.33]
    assert normalise_weights([100, 1]) == [0.99, 0.01]
    assert normalise_weights([]) == []


def test_reference_with_nothing_beyond_question_is_one_point() -> None:
    crit = build_criteria("What is gradient descent?", "Gradient descent.")
    assert [c.text for c in crit] == ["Gradient descent."]
    assert crit[0].weight == 1.0


def test_single_sentence_reference() -> None:
    crit = build_criteria("What is dropout?", "Dropout randomly zeroes activations during training to regularise.")
    assert len(crit) == 1 and crit[0].weight == 1.0


def test_claims_joined_in_one_sentence_are_split_cleanly(seed_questions: dict[str, Question]) -> None:
    assert _texts(seed_questions["easy-3"])[1:] == [
        "A language model is used to predict the next word in a sentence.",
        "A language model is used to generate text.",
        "A language model is used to improve the performance of various NLP tasks.",
    ]
    assert _texts(seed_questions["medium-5"])[:2] == [
        "Pruning improves model performance by reducing the number of parameters in the neural network.",
        "Pruning can lead to faster inference times and lower memory usage.",
    ]
    assert _texts(seed_questions["hard-3"])[1:3] == [
        "The student model learns from the teacher model's predictions.",
        "The student model can achieve similar performance with reduced computational resources.",
    ]
    assert "Transfer learning in NLP often leads to better results than training from scratch." in _texts(
        seed_questions["medium-1"]
    )
    assert _texts(seed_questions["hard-2"])[1:3] == [
        "I would choose a suitable model architecture, such as BERT or another transformer-based model.",
        "I would fine-tune the model on the Telecom-specific dataset.",
    ]


def test_short_consequence_is_not_split(seed_questions: dict[str, Question]) -> None:
    """'..., leading to unfair outputs' is too short to stand alone: it stays with its claim."""
    assert "Bias and fairness: Unchecked models can amplify the biases present in the training data, leading to " \
           "unfair outputs." in _texts(seed_questions["genai-2"])
