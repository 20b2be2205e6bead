"""Eval-set loaders: Mohler as it is, the project's interview set, JSONL and column-mapped CSV, bad rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from grader.errors import InputError
from grader.evaluation.datasets import load_dataset, parse_mapping
from grader.paths import REPO_ROOT

INTERVIEW = REPO_ROOT / "eval" / "interview" / "answers.jsonl"
KINDS = {
    "complete", "paraphrase", "partial", "vague", "wrong", "misconception", "negated", "off-topic",
    "keyword-stuffed", "manipulation",
}


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "question_id": "q1", "question": "What is pruning?", "reference_answer": "Removing weights.",
        "answer": "It removes weights.", "score": 4,
    }
    row.update(over)
    return row


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_mohler_dev_loads_as_it_is(mohler_dev_path: Path) -> None:
    ds = load_dataset(mohler_dev_path)
    assert len(ds.items) == 1074 and ds.errors == []
    assert len({i.group for i in ds.items}) == 37
    first = ds.items[0]
    assert (first.score, first.score_a, first.score_b, first.max_score) == (3.5, 4.0, 3.0, 5.0)
    assert first.human_a == 4.0
    assert ds.has_second_grader


def test_interview_set_covers_every_kind_for_every_seed_question() -> None:
    ds = load_dataset(INTERVIEW)
    assert ds.errors == []
    by_q: dict[str, list[str]] = {}
    for item in ds.items:
        by_q.setdefault(item.group, []).append(item.answer_kind or "")
        assert item.score == int(item.score) and 0 <= item.score <= 5
    expected = {f"genai-{i}" for i in range(1, 5)} | {
        f"{lvl}-{i}" for lvl in ("easy", "medium", "hard") for i in range(1, 7)
    }
    assert set(by_q) == expected
    for qid, kinds in by_q.items():
        assert len(kinds) >= 10, qid
        assert set(kinds) >= KINDS, (qid, KINDS - set(kinds))
    raw = [json.loads(line) for line in INTERVIEW.read_text().splitlines()]
    assert all(r.get("note") and r.get("graded_by") for r in raw)
    # Grades follow the written guideline's design: no off-topic, negated or wrong answer earns more than 1.
    for r in raw:
        if r["answer_kind"] in ("off-topic", "negated", "wrong"):
            assert r["score"] <= 1, r["answer_id"]
    assert (REPO_ROOT / "eval" / "interview" / "GUIDELINE.md").is_file()


def test_bad_rows_are_reported_with_file_line_field_and_good_rows_kept(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "set.jsonl",
        [_row(), "{not json", _row(score=7), _row(answer_id="x", question="  "), "# a comment", "", _row(score=0)],
    )
    ds = load_dataset(path)
    assert [i.score for i in ds.items] == [4.0, 0.0]
    assert len(ds.errors) == 3
    assert ds.errors[0].startswith(f"{path}:2: not valid JSON")
    assert ds.errors[1].startswith(f"{path}:3: ") and "score 7 is above max_score 5" in ds.errors[1]
    assert ds.errors[2].startswith(f"{path}:4: question: ")


def test_strict_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "set.jsonl", [_row(), _row(score="high")])
    with pytest.raises(InputError) as e:
        load_dataset(path, strict=True)
    assert (e.value.line, e.value.field) == (2, "score")


def test_missing_field_and_max_score(tmp_path: Path) -> None:
    row = _row(max_score=10, score=8, score_b=9.5)
    del row["question_id"]
    bad = _row()
    del bad["answer"]
    path = _write_jsonl(tmp_path / "set.jsonl", [row, bad])
    ds = load_dataset(path)
    assert ds.items[0].max_score == 10 and ds.items[0].group.startswith("q-")
    assert ds.errors == [f"{path}:2: answer: Field required"]


def test_mixed_scales_are_rejected(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "set.jsonl", [_row(), _row(max_score=10)])
    with pytest.raises(InputError, match="different max_score"):
        load_dataset(path)


def test_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text(
        "Q,Ref,Student,Grade,Grade2,Id\n"
        'What is pruning?,Removing weights.,"It removes weights, mostly.",4,3,p\n'
        "What is pruning?,Removing weights.,Adds layers.,0,,p\n"
        "What is pruning?,Removing weights.,Adds layers.,lots,,p\n"
    )
    mapping = parse_mapping(
        ["question=Q", "reference_answer=Ref", "answer=Student", "score=Grade", "score_b=Grade2", "question_id=Id"]
    )
    ds = load_dataset(path, mapping)
    assert [(i.answer, i.score, i.score_b) for i in ds.items] == [
        ("It removes weights, mostly.", 4.0, 3.0),
        ("Adds layers.", 0.0, None),
    ]
    assert ds.errors and ds.errors[0].startswith(f"{path}:4: score: ")


def test_csv_mapping_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text("Q,Ref,Student,Grade\nq,r,a,1\n")
    with pytest.raises(InputError, match="no column for question, reference_answer, answer, score"):
        load_dataset(path)
    with pytest.raises(InputError, match="'Nope'"):
        load_dataset(path, {"question": "Nope"})
    with pytest.raises(InputError, match="unknown field"):
        load_dataset(path, {"questionn": "Q"})
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_mapping(["answer"])


def test_unusable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no usable rows"):
        load_dataset(empty)
    with pytest.raises(InputError, match="cannot read"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match=r"\.jsonl or \.csv"):
        load_dataset(tmp_path / "set.xlsx")


def test_interview_grade_distribution_matches_readme() -> None:
    ds = load_dataset(INTERVIEW)
    counts = Counter(int(i.score) for i in ds.items)
    readme = (REPO_ROOT / "eval" / "interview" / "README.md").read_text()
    line = ", ".join(f"{k}: {counts[k]}" for k in range(6))
    assert f"Grade distribution: {line} (n = {len(ds.items)})" in readme
