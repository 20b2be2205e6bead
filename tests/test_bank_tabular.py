"""JSON, JSONL, YAML and CSV banks, with column mapping, through `grader bank import`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CliResult, run_cli

from grader.bank.loader import load_bank
from grader.bank.tabular import ColumnMap
from grader.rubric.store import load_rubric, load_rubrics

ROWS = [
    {
        "id": "q1",
        "question": "What is overfitting?",
        "reference_answer": "Overfitting is when a model memorises the training data and fails to generalise.",
        "difficulty": "easy",
        "topic": "ML fundamentals",
        "max_score": 10,
    },
    {
        "id": "q2",
        "question": "What does dropout do?",
        "reference_answer": "Dropout randomly zeroes activations during training.\n\n- It reduces co-adaptation.",
    },
]


def _check(questions: list, bank: str) -> None:
    assert [q.id for q in questions] == ["q1", "q2"]
    q1, q2 = questions
    assert q1.bank == bank and q1.question == "What is overfitting?"
    assert q1.difficulty == "easy" and q1.topic == "ML fundamentals" and q1.max_score == 10
    assert q2.max_score == 5.0 and q2.difficulty is None
    assert q2.reference_answer.endswith("- It reduces co-adaptation.")


def test_json_list(tmp_path: Path) -> None:
    p = tmp_path / "ml.json"
    p.write_text(json.dumps(ROWS))
    bank = load_bank(p)
    assert bank.name == "ml" and bank.problems == []
    _check(bank.questions, "ml")
    assert bank.questions[0].source == "ml.json: [0]"


def test_json_questions_object(tmp_path: Path) -> None:
    p = tmp_path / "bank.json"
    p.write_text(json.dumps({"questions": ROWS}))
    _check(load_bank(p, "mine").questions, "mine")


def test_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    bank = load_bank(p)
    _check(bank.questions, "b")
    assert bank.questions[1].source == "b.jsonl: line 2"


def test_yaml_list_and_mapping(tmp_path: Path) -> None:
    import yaml

    p = tmp_path / "b.yaml"
    p.write_text(yaml.safe_dump(ROWS, sort_keys=False))
    _check(load_bank(p).questions, "b")
    p2 = tmp_path / "c.yml"
    p2.write_text(yaml.safe_dump({"questions": ROWS}, sort_keys=False))
    _check(load_bank(p2).questions, "c")


def test_csv_with_column_mapping(tmp_path: Path) -> None:
    p = tmp_path / "quiz.csv"
    p.write_text(
        "qid,prompt,model_answer,level,area,points\n"
        'q1,What is overfitting?,Overfitting is when a model memorises the training data and fails to generalise.,'
        "easy,ML fundamentals,10\n"
        'q2,What does dropout do?,"Dropout randomly zeroes activations during training.\n\n- It reduces '
        'co-adaptation.",,,\n'
    )
    columns = ColumnMap(id="qid", question="prompt", reference="model_answer", difficulty="level",
                        topic="area", max_score="points")
    bank = load_bank(p, columns=columns)
    assert bank.problems == []
    _check(bank.questions, "quiz")


def test_missing_id_is_generated(tmp_path: Path) -> None:
    p = tmp_path / "noids.jsonl"
    rows = [{k: v for k, v in r.items() if k != "id"} for r in ROWS]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    assert [q.id for q in load_bank(p).questions] == ["noids-1", "noids-2"]


def test_numeric_ids_become_strings(tmp_path: Path) -> None:
    p = tmp_path / "n.json"
    p.write_text(json.dumps([{**ROWS[0], "id": 7}]))
    assert load_bank(p).questions[0].id == "7"


def test_import_csv_via_cli_writes_rubrics(tmp_path: Path) -> None:
    p = tmp_path / "quiz.csv"
    p.write_text(
        "qid,prompt,model_answer\n"
        "a1,What is overfitting?,Overfitting is when a model memorises the training data and fails to generalise.\n"
    )
    out = tmp_path / "rubrics"
    r = run_cli("bank", "import", p, "--out", out, "--builder", "deterministic", "--id-col", "qid",
                "--question-col", "prompt", "--reference-col", "model_answer")
    assert r.code == 0, r.err
    rubric = load_rubric(out / "quiz" / "a1.yaml")
    assert rubric.question == "What is overfitting?"
    assert rubric.criteria and rubric.builder == "deterministic/v1"


def test_import_seed_via_cli(tmp_path: Path, seed_bank_path: Path) -> None:
    out = tmp_path / "rubrics"
    r = run_cli("bank", "import", seed_bank_path, "--bank", "interview", "--out", out, "--builder", "deterministic")
    assert r.code == 0, r.err
    assert "imported 22 question(s)" in r.out
    rubrics = load_rubrics(out)
    assert len(rubrics) == 22
    assert all(len(x.criteria) >= 2 for x in rubrics)


def test_import_keeps_existing_files_without_force(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    p.write_text(json.dumps(ROWS))
    out = tmp_path / "rubrics"
    assert run_cli("bank", "import", p, "--out", out, "--builder", "deterministic").code == 0
    target = out / "b" / "q1.yaml"
    edited = target.read_text().replace("What is overfitting?", "What is over-fitting, really?")
    target.write_text(edited)
    r = run_cli("bank", "import", p, "--out", out, "--builder", "deterministic")
    assert r.code == 0
    assert f"kept {target}" in r.err
    assert target.read_text() == edited
    r = run_cli("bank", "import", p, "--out", out, "--builder", "deterministic", "--force")
    assert r.code == 0 and "What is overfitting?" in target.read_text()


# --- malformed banks: one line naming file and line or field, exit code 2 ---------------------------------


def _import(tmp_path: Path, name: str, content: str | bytes, *extra: str) -> tuple[Path, CliResult]:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p, run_cli("bank", "import", p, "--out", tmp_path / "out", "--builder", "deterministic", *extra)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ") and "could not be imported" not in line]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("b.json", '[\n  {"id": "q1",\n  "question": }\n]', "{p}:3: bad JSON: Expecting value"),
        ("b.yaml", "- id: q1\n  question: [unclosed\n  reference_answer: x\n",
         "{p}:3: bad YAML: expected ',' or ']', but got ':'"),
        ("b.jsonl", json.dumps({"id": "q1", "question": "What?"}) + "\n",
         "{p}:1: reference_answer: missing (required)"),
        ("b.json", json.dumps([ROWS[0], {"id": "q9", "reference_answer": "x y z"}]),
         "{p}: question: [1]: missing (required)"),
        ("b.jsonl", json.dumps(ROWS[0]) + "\n[1, 2]\n", "{p}:2: expected an object with fields, got list"),
        ("b.csv", "id,question,reference_answer\nq1,A?,Answer one.\nq1,B?,Answer two.\n",
         "{p}:3: id: duplicate question id 'q1' (first in line 2)"),
        ("b.csv", 'id,question,reference_answer\nq1,What?,"   "\n', "{p}:2: reference_answer: must not be empty"),
        ("b.csv", "id,question,reference_answer\nq1,What?,Answer one.\nq2,Why?,Because of A, and B.\n",
         "{p}:3: 4 cells but 3 columns; quote cells that contain commas"),
        ("b.md", "Easy Questions\n\nQuestion 1\n\nQ: What?\n\nA:\n",
         "{p}:3: reference_answer: question 'easy-1' has an empty reference answer"),
        ("b.csv", "id,prompt,reference_answer\nq1,What?,Answer.\n",
         "{p}:1: question: no column 'question' (columns: id, prompt, reference_answer); map it with --question-col"),
    ],
    ids=["bad-json", "bad-yaml", "missing-field", "missing-field-json-item", "row-not-an-object", "duplicate-id",
         "empty-reference", "unquoted-comma", "empty-reference-markdown", "csv-unmapped-column"],
)
def test_bad_row_gives_one_error_line(tmp_path: Path, name: str, content: str, expected: str) -> None:
    p, r = _import(tmp_path, name, content)
    assert r.code == 2
    assert _error_lines(r.err) == ["error: " + expected.format(p=p)]


def test_bad_jsonl_line_keeps_good_rows(tmp_path: Path) -> None:
    good = json.dumps(ROWS[0])
    p, r = _import(tmp_path, "b.jsonl", f"{good}\n{{not json\n")
    assert r.code == 2
    assert _error_lines(r.err) == [f"error: {p}:2: bad JSON: Expecting property name enclosed in double quotes "
                                   "(column 2)"]
    assert (tmp_path / "out" / "b" / "q1.yaml").is_file()  # the good row was still imported


def test_wrong_types(tmp_path: Path) -> None:
    rows = [{**ROWS[0], "max_score": "lots"}, {**ROWS[1], "question": 42}]
    p, r = _import(tmp_path, "b.jsonl", "\n".join(json.dumps(x) for x in rows))
    assert r.code == 2
    lines = _error_lines(r.err)
    assert lines[0].startswith(f"error: {p}:1: max_score: Input should be a valid number")
    assert lines[1] == f"error: {p}:2: question: Input should be a valid string"


@pytest.mark.parametrize("name", ["b.csv", "b.md", "b.json", "b.yaml"])
def test_non_utf8_bytes(tmp_path: Path, name: str) -> None:
    content = b"id,question,reference_answer\nq1,Caf\xe9?,Answer.\n"
    p, r = _import(tmp_path, name, content)
    assert r.code == 2
    assert _error_lines(r.err) == [f"error: {p}:2: not UTF-8 (bad byte 0xe9 at offset 35)"]


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    p, r = _import(tmp_path, "b.txt", "hello")
    assert r.code == 2 and f"error: {p}: unknown bank format '.txt'" in r.err
    r = run_cli("bank", "import", tmp_path / "nope.json")
    assert r.code == 2 and "no such bank file" in r.err


def test_error_through_real_subprocess(tmp_path: Path) -> None:
    from cli_runner import run_cli_subprocess

    p = tmp_path / "b.jsonl"
    p.write_text(json.dumps({"id": "q1", "question": "What?"}) + "\n")
    r = run_cli_subprocess("bank", "import", p, "--out", tmp_path / "out", "--builder", "deterministic")
    assert r.code == 2
    assert f"error: {p}:1: reference_answer: missing (required)" in r.err.splitlines()


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    p = tmp_path / "excel.csv"
    p.write_bytes("id,question,reference_answer\nq1,What?,An answer here.\n".encode("utf-8-sig"))
    assert [q.id for q in load_bank(p).questions] == ["q1"]
