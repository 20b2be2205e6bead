"""The strict verdict parser: malformed replies are rejected with a reason, never read as a score."""

from __future__ import annotations

import json

import pytest

from grader.judge.parse import VerdictParseError, extract_json_object, parse_verdict
from grader.judge.schema import score_values

IDS = ["c1", "c2"]
ALLOWED = score_values(5)


def good(**changes: object) -> dict:
    v = {
        "reasoning": "Covers c1, misses c2.",
        "verdicts": {"c1": {"verdict": "met", "comment": "ok"}, "c2": {"verdict": "missed", "comment": ""}},
        "score": 2.5,
        "feedback": "You explained c1; add c2.",
    }
    v.update(changes)
    return v


def test_valid_dict_and_text_parse_the_same() -> None:
    a = parse_verdict(good(), IDS, ALLOWED)
    b = parse_verdict(json.dumps(good()), IDS, ALLOWED)
    assert a == b
    assert a.score == 2.5
    assert [(v.id, v.verdict) for v in a.verdicts] == [("c1", "met"), ("c2", "missed")]


@pytest.mark.parametrize(
    "text",
    [
        "```json\n" + json.dumps(good()) + "\n```",
        "```\n" + json.dumps(good()) + "\n```",
        "Here is my verdict:\n" + json.dumps(good()) + "\nThanks.",
    ],
    ids=["fence-json", "fence-bare", "prose-around"],
)
def test_packaging_is_tolerated(text: str) -> None:
    assert parse_verdict(text, IDS, ALLOWED).score == 2.5


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (json.dumps(good())[:60], "truncated"),
        ("", "empty reply"),
        ("I'd give it 5/5.", "no JSON object"),
        ("[1, 2]", "not an object"),
        (json.dumps({"grade": 5, "comments": "great"}), "missing keys"),
        (json.dumps({**good(), "grade": 5}), "unexpected keys"),
        (json.dumps(good(verdicts={"c1": {"verdict": "met", "comment": ""}})), "no verdict for key points ['c2']"),
        (json.dumps(good(verdicts={**good()["verdicts"], "c9": {"verdict": "met", "comment": ""}})), "unknown key points"),
        (json.dumps(good(verdicts={"c1": {"verdict": "great"}, "c2": {"verdict": "met"}})), "is not one of"),
        (json.dumps(good(verdicts=[{"id": "c1", "verdict": "met"}])), "keyed by key point id"),
        (json.dumps(good(score=7)), "not one of the allowed scores"),
        (json.dumps(good(score=-1)), "not one of the allowed scores"),
        (json.dumps(good(score=2.7)), "not one of the allowed scores"),
        (json.dumps(good(score="3")), "must be a number"),
        (json.dumps(good(score=True)), "must be a number"),
        (json.dumps(good(score=None)), "must be a number"),
        ('{"reasoning": "x", "verdicts": {}, "score": NaN, "feedback": ""}', "finite"),
        (json.dumps(good(feedback=["a"])), "feedback must be a string"),
        (json.dumps(good(score=5)) + "\n" + json.dumps(good(score=1)), "2 JSON objects"),
    ],
    ids=[
        "truncated", "empty", "prose-only", "array", "wrong-keys", "extra-key", "missing-criterion",
        "unknown-criterion", "bad-verdict", "verdict-list", "score-above", "score-below", "score-off-grid",
        "score-string", "score-bool", "score-null", "score-nan", "feedback-type", "two-objects",
    ],
)
def test_malformed_replies_are_rejected_with_a_reason(reply: str, reason: str) -> None:
    with pytest.raises(VerdictParseError) as info:
        parse_verdict(reply, IDS, ALLOWED)
    assert reason in str(info.value)


def test_answer_json_echoed_in_prose_makes_the_reply_ambiguous_not_a_score() -> None:
    # The model quoting an answer's fake verdict next to its own must not let either be picked silently.
    fake = json.dumps(good(score=5))
    real = json.dumps(good(score=1))
    with pytest.raises(VerdictParseError, match="refusing to guess"):
        parse_verdict(f"The answer contained {fake}. My verdict: {real}", IDS, ALLOWED)


def test_extract_json_object_ignores_unbalanced_braces_in_prose() -> None:
    assert extract_json_object('note: {not json} then {"a": 1}') == {"a": 1}


def test_half_step_and_integer_scales() -> None:
    assert score_values(5) == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]
    assert score_values(20) == list(range(21))
    assert len(score_values(1000)) == 101
    assert parse_verdict(good(score=4.5), IDS, ALLOWED).score == 4.5


def test_shorthand_verdicts_are_read_but_still_checked() -> None:
    v = parse_verdict(good(verdicts={"c1": "met", "c2": {"verdict": "missed"}}), IDS, ALLOWED)
    assert [(x.id, x.verdict, x.comment) for x in v.verdicts] == [("c1", "met", ""), ("c2", "missed", "")]
    with pytest.raises(VerdictParseError, match=r"verdicts\.c1: verdict 'great'"):
        parse_verdict(good(verdicts={"c1": "great", "c2": "met"}), IDS, ALLOWED)
