"""The seed bank's Markdown format: 22 questions with exact ids, texts, bullets and page-break joins."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.bank.loader import load_bank
from grader.bank.markdown import parse_markdown_bank, strip_markdown

EXPECTED_IDS = (
    [f"genai-{i}" for i in range(1, 5)]
    + [f"easy-{i}" for i in range(1, 7)]
    + [f"medium-{i}" for i in range(1, 7)]
    + [f"hard-{i}" for i in range(1, 7)]
)


@pytest.fixture(scope="module")
def seed(seed_bank_path: Path) -> dict:
    bank = load_bank(seed_bank_path, "interview")
    assert bank.problems == []
    return {q.id: q for q in bank.questions}


def test_seed_has_22_questions_with_exact_ids_in_order(seed_bank_path: Path) -> None:
    bank = load_bank(seed_bank_path, "interview")
    assert [q.id for q in bank.questions] == EXPECTED_IDS
    assert {q.bank for q in bank.questions} == {"interview"}


def test_default_bank_name_is_the_file_stem(seed_bank_path: Path) -> None:
    assert load_bank(seed_bank_path).name == "interview_questions"


@pytest.mark.parametrize(
    ("qid", "text"),
    [
        ("genai-1", "What are the key differences between discriminative and generative models?"),
        (
            "genai-4",
            "How can prompts be strategically designed to elicit desired behaviors or outputs from the model? "
            "What are some best practices for effective prompt engineering?",
        ),
        ("easy-1", "What is the difference between TensorFlow and PyTorch?"),
        ("easy-2", "What is pruning in model compression?"),
        ("medium-6", "How do you handle missing data in a dataset?"),
        ("hard-1", "Describe the architecture of GPT and how it differs from BERT."),
        ("hard-6", "Explain the process of text classification using a pre-trained model from Hugging Face."),
    ],
)
def test_question_texts(seed: dict, qid: str, text: str) -> None:
    assert seed[qid].question == text


def test_difficulty_from_heading_and_genai_medium(seed: dict) -> None:
    for qid, q in seed.items():
        expected = qid.split("-")[0]
        assert q.difficulty == ("medium" if expected == "genai" else expected), qid


def test_every_question_has_a_topic_and_source(seed: dict) -> None:
    for q in seed.values():
        assert q.topic, q.id
        assert q.source and q.source.startswith("interview_questions.md: ")
    assert seed["easy-2"].topic == "model compression"
    assert seed["genai-4"].topic == "prompt engineering"
    assert seed["hard-3"].source.startswith("interview_questions.md: Hard Questions/Question 3")


def test_full_reference_answer_kept(seed: dict) -> None:
    ref = seed["easy-1"].reference_answer
    assert ref.startswith("TensorFlow is a symbolic math library")
    assert ref.endswith("which makes it more intuitive and easier to debug.")
    assert seed["hard-3"].reference_answer.endswith("deploy models on resource-constrained devices.")


@pytest.mark.parametrize("qid", ["hard-4", "medium-6", "hard-5"])
def test_bullets_kept(seed: dict, qid: str) -> None:
    lines = seed[qid].reference_answer.splitlines()
    bullets = [line for line in lines if line.startswith("- ")]
    assert len(bullets) == 4
    if qid == "hard-4":
        assert bullets[0] == (
            "- Resampling the dataset by oversampling the minority class or undersampling the majority class."
        )
        assert "SMOTE (Synthetic Minority Over-sampling Technique)" in bullets[3]


def test_numbered_steps_kept(seed: dict) -> None:
    lines = seed["hard-6"].reference_answer.splitlines()
    steps = [line for line in lines if line[:2] in {"1.", "2.", "3.", "4.", "5."}]
    assert [s[:2] for s in steps] == ["1.", "2.", "3.", "4.", "5."]
    assert steps[0] == "1. Load a pre-trained model and tokenizer from the Hugging Face library."


def test_lettered_blocks_become_bullets_and_lone_a_is_dropped(seed: dict) -> None:
    genai3 = seed["genai-3"].reference_answer.splitlines()
    labels = [line.split(":")[0] for line in genai3 if line.startswith("- ")]
    assert labels == [
        "- Prompt engineering",
        "- Temperature and sampling control",
        "- Style transfer (Images)",
        "- Fine-tuning",
        "- Reinforcement learning",
    ]
    assert seed["genai-1"].reference_answer.startswith("Discriminative models learn the decision boundary")
    assert seed["genai-2"].reference_answer.startswith("- Computational cost: High computational power")


def test_page_break_artifacts_are_joined(seed: dict) -> None:
    assert (
        "Lower temperatures mean a more conservative and predictable token selection"
        in seed["genai-3"].reference_answer
    )
    assert "considers both the left and right context of a word during training." in seed["hard-1"].reference_answer
    assert "\n\nof a word" not in seed["hard-1"].reference_answer


def test_markdown_stripped_math_kept(seed: dict) -> None:
    for q in seed.values():
        assert "**" not in q.reference_answer and "](#)" not in q.reference_answer, q.id
        assert "**" not in q.question
    assert "$P(y|x)$" in seed["genai-1"].reference_answer
    assert "$P(x,y)$" in seed["genai-1"].reference_answer
    assert "The temperature parameter controls" in seed["genai-3"].reference_answer
    assert "can amplify the biases present" in seed["genai-2"].reference_answer


def test_paragraphs_stay_apart(seed: dict) -> None:
    ref = seed["genai-1"].reference_answer
    assert "categories.\n\nGenerative models learn" in ref


def test_strip_markdown() -> None:
    assert strip_markdown("****Q:**** What?") == "Q: What?"
    assert strip_markdown("a) **Cost:** High [computational power](#) use") == "a) Cost: High computational power use"
    assert strip_markdown("The *temperature* and $P(y|x)$") == "The temperature and $P(y|x)$"


def test_markdown_problems_are_reported_per_question(tmp_path: Path) -> None:
    text = (
        "Easy Questions\n\nQuestion 1\n\n**Q:** What is X?\n\n**A:** X is a thing.\n\n"
        "Question 1\n\n**Q:** Again?\n\n**A:** Duplicate.\n\n"
        "Question 2\n\n**Q:** No answer?\n\n**A:**\n\n"
        "Question 3\n\n**Q:** Fine?\n\n**A:** Fine answer here.\n"
    )
    path = tmp_path / "b.md"
    questions, problems = parse_markdown_bank(text, path, "b")
    assert [q.id for q in questions] == ["easy-1", "easy-3"]
    rendered = [str(p) for p in problems]
    assert rendered[0].startswith(f"{path}:9: id: duplicate question id 'easy-1'")
    assert rendered[1].startswith(f"{path}:15: reference_answer: ")
    assert "empty reference answer" in rendered[1]
