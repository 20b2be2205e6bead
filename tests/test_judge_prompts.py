"""Prompts are versioned data: loadable, hashed, identical when rendered by us or by LangChain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from servers.rubric import pruning_rubric

from grader.errors import InputError
from grader.judge.prompts import load_prompt
from grader.judge.render import build_messages, escape_answer, nonce_for
from grader.judge.schema import strict_schema, verdict_schema


def test_shipped_prompt_loads_with_version_and_hash() -> None:
    p = load_prompt("judge/v1")
    assert p.id == "judge/v1" and p.version
    assert p.label == f"judge/v1@{p.version}"
    assert len(p.content_hash) == 16
    assert [m.role for m in p.messages] == ["system", "user"]
    assert load_prompt("judge/v1").content_hash == p.content_hash


def test_any_wording_change_changes_the_hash(tmp_path: Path) -> None:
    src = load_prompt("judge/v1")
    data = yaml.safe_load(Path(src.source).read_text())
    data["messages"][0]["content"] += " Be brief."
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "v1.yaml").write_text(yaml.safe_dump(data))
    edited = load_prompt("judge/v1", tmp_path)
    assert edited.version == src.version
    assert edited.content_hash != src.content_hash


def test_rendering_matches_langchain_chat_prompt_template() -> None:
    p = load_prompt("judge/v1")
    rubric = pruning_rubric()
    ours = build_messages(p, rubric, "Pruning {removes} weights.")
    values = {
        "question": rubric.question, "reference_answer": rubric.reference_answer,
        "nonce": nonce_for(p, rubric, "Pruning {removes} weights."),
    }
    # Recover every value from our rendering's inputs, then let LangChain render the same template.
    from grader.judge.render import _num, format_criteria, format_scores
    from grader.judge.schema import score_values

    values.update(criteria=format_criteria(rubric), max_score=_num(rubric.max_score),
                  score_values=format_scores(score_values(rubric.max_score)),
                  answer=escape_answer("Pruning {removes} weights."))
    lc = p.to_langchain().format_messages(**values)
    assert [m.content for m in lc] == [m["content"] for m in ours]
    assert [m.type for m in lc] == ["system", "human"]


def test_user_message_carries_rubric_reference_and_credit_levels() -> None:
    msgs = build_messages(load_prompt("judge/v1"), pruning_rubric(), "an answer")
    user = msgs[1]["content"]
    for needle in ("What is pruning", "least important weights or neurons", "id: c1 (weight 0.50)",
                   "full credit: says which weights", "partial credit:", "no credit:", "allowed scores: 0, 0.5, 1"):
        assert needle in user
    assert "reason" in msgs[0]["content"].lower() and "feedback" in msgs[0]["content"]


def test_nonce_is_deterministic_per_input_and_differs_between_answers() -> None:
    p, r = load_prompt("judge/v1"), pruning_rubric()
    assert build_messages(p, r, "a") == build_messages(p, r, "a")
    assert nonce_for(p, r, "a") != nonce_for(p, r, "b")


def test_schema_uses_enums_and_criterion_ids_as_required_keys() -> None:
    s = verdict_schema(pruning_rubric())
    assert s["properties"]["score"]["enum"] == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]
    assert "minimum" not in s["properties"]["score"]
    v = s["properties"]["verdicts"]
    assert v["required"] == ["c1", "c2", "c3"] and v["additionalProperties"] is False
    assert v["properties"]["c1"]["properties"]["verdict"]["enum"] == ["met", "partial", "missed", "contradicted"]
    assert list(s["properties"]) == ["reasoning", "verdicts", "score", "feedback"]  # reasoning comes first
    assert "maxLength" not in str(strict_schema(s)) and "maxLength" in str(s)


def test_unknown_prompt_and_bad_prompt_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no prompt 'judge/v9'"):
        load_prompt("judge/v9")
    (tmp_path / "judge").mkdir()
    bad = tmp_path / "judge" / "v1.yaml"
    bad.write_text("id: judge/v1\nversion: '1'\ninput_variables: [answer]\nmessages:\n  - role: user\n    content: '{answer} {nonce}'\n")
    with pytest.raises(InputError, match="input_variables") as info:
        load_prompt("judge/v1", tmp_path)
    assert str(bad) in str(info.value)
