"""Rubric files: round trip, lookup by id, readable YAML, and every malformed-file error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_runner import CliResult, run_cli

from grader.errors import InputError
from grader.models import Criterion, Question, Rubric
from grader.rubric.deterministic import build_rubric
from grader.rubric.schema import rubric_json_schema_text
from grader.rubric.store import find_rubric, load_rubric, load_rubrics, rubric_to_yaml, write_rubric


def _rubric(qid: str = "q1", bank: str = "b") -> Rubric:
    q = Question(
        id=qid,
        bank=bank,
        question="What is quantization?",
        reference_answer="Quantization stores weights with fewer bits.\n\n- It shrinks the model.\n- It speeds up inference.",
        difficulty="easy",
        topic="model compression",
    )
    return build_rubric(q)


def test_round_trip(tmp_path: Path) -> None:
    r = _rubric()
    path = write_rubric(r, tmp_path / "b" / "q1.yaml")
    assert load_rubric(path) == r


def test_yaml_is_readable(tmp_path: Path) -> None:
    text = rubric_to_yaml(_rubric())
    assert "!!python" not in text
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert keys == ["schema_version", "id", "bank", "question", "reference_answer", "difficulty", "topic",
                    "max_score", "builder", "criteria"]
    assert "reference_answer: |-\n  Quantization stores weights with fewer bits.\n\n  - It shrinks the model." in text
    assert "    keywords: [" in text


def test_committed_seed_rubrics_load(repo_root: Path) -> None:
    rubrics = load_rubrics(repo_root / "rubrics")
    assert sorted(r.id for r in rubrics) == sorted(
        [f"genai-{i}" for i in range(1, 5)] + [f"{d}-{i}" for d in ("easy", "medium", "hard") for i in range(1, 7)]
    )
    for r in rubrics:
        assert r.bank == "interview"
        assert abs(sum(c.weight for c in r.criteria) - 1) < 1e-9, r.id
        # The builder's points, each with accepted phrasings a person added: the fingerprint tells them apart.
        assert all(c.synonyms and c.edited_by_hand and c.origin == "auto" for c in r.criteria), r.id


def test_phrasings_are_written_one_per_line(tmp_path: Path) -> None:
    rubric = _rubric("q1", "a")
    first = rubric.criteria[0].model_copy(update={"synonyms": ["One way to say it.", "Another, longer way to say it."]})
    rubric = rubric.model_copy(update={"criteria": [first, *rubric.criteria[1:]]})
    text = write_rubric(rubric, tmp_path / "q1.yaml").read_text()
    assert "    synonyms:\n      - One way to say it.\n      - Another, longer way to say it.\n" in text
    assert load_rubric(tmp_path / "q1.yaml") == rubric


def test_find_rubric_by_id_and_bank_id(tmp_path: Path) -> None:
    write_rubric(_rubric("q1", "a"), tmp_path / "a" / "q1.yaml")
    write_rubric(_rubric("q1", "b"), tmp_path / "b" / "q1.yaml")
    write_rubric(_rubric("q2", "b"), tmp_path / "b" / "q2.yaml")
    assert find_rubric(tmp_path, "q2").id == "q2"
    assert find_rubric(tmp_path, "a/q1").bank == "a"
    with pytest.raises(InputError, match=r"question id 'q1' is ambiguous .*write it as bank/id"):
        find_rubric(tmp_path, "q1")
    with pytest.raises(InputError) as e:
        find_rubric(tmp_path, "nope")
    assert "'nope'" in str(e.value) and str(tmp_path) in str(e.value)


def test_find_rubric_when_file_name_differs(tmp_path: Path) -> None:
    write_rubric(_rubric("q7", "b"), tmp_path / "b" / "renamed.yaml")
    assert find_rubric(tmp_path, "q7").id == "q7"


def test_schema_committed_equals_generated(repo_root: Path) -> None:
    committed = (repo_root / "rubrics" / "rubric.schema.json").read_text(encoding="utf-8")
    assert committed == rubric_json_schema_text(), "run: grader rubric schema -o rubrics/rubric.schema.json"
    schema = json.loads(committed)
    assert set(schema["required"]) >= {"id", "question", "reference_answer"}
    assert "Criterion" in schema["$defs"]


def test_schema_command_prints_the_schema() -> None:
    r = run_cli("rubric", "schema")
    assert r.code == 0 and json.loads(r.out) == json.loads(rubric_json_schema_text())


# --- malformed rubric files: `grader rubric validate` reports each problem as file:line: field: message --------


GOOD = """\
schema_version: 1
id: q1
bank: b
question: What is quantization?
reference_answer: |-
  Quantization stores weights with fewer bits.
max_score: 5.0
criteria:
  - id: c1
    text: Quantization stores weights with fewer bits.
    weight: 1.0
    keywords: [bits]
"""


def _validate(tmp_path: Path, content: str | bytes, name: str = "q1.yaml") -> tuple[Path, CliResult]:
    folder = tmp_path / "rubrics" / "b"
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p, run_cli("rubric", "validate", tmp_path / "rubrics")


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ") and "problem(s) in rubric" not in line]


def test_validate_good_file(tmp_path: Path) -> None:
    _, r = _validate(tmp_path, GOOD)
    assert r.code == 0 and r.out == "1 rubrics OK\n"


def test_validate_bad_yaml(tmp_path: Path) -> None:
    p, r = _validate(tmp_path, GOOD.replace("weight: 1.0", "weight: [1.0"))
    assert r.code == 2
    (line,) = _errors(r.err)
    assert line.startswith(f"error: {p}:12: bad YAML: expected ',' or ']'")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (GOOD.replace("question: What is quantization?\n", ""), "{p}:1: question: missing required field"),
        (GOOD.replace("reference_answer: |-\n  Quantization stores weights with fewer bits.\n", 'reference_answer: " "\n'),
         "{p}:5: reference_answer: must not be empty"),
        (GOOD[: GOOD.index("criteria:")] + "criteria: []\n",
         "{p}:8: criteria: no criteria: a rubric needs at least one key point"),
        (GOOD.replace("What is", "Caf\xe9 is").encode("latin-1"), "{p}:4: not UTF-8 (bad byte 0xe9 at offset 46)"),
    ],
    ids=["missing-field", "empty-reference", "no-criteria", "non-utf8"],
)
def test_validate_reports_the_one_problem(tmp_path: Path, content: str | bytes, expected: str) -> None:
    p, r = _validate(tmp_path, content)
    assert r.code == 2
    assert _errors(r.err) == ["error: " + expected.format(p=p)]


def test_validate_wrong_types_each_reported(tmp_path: Path) -> None:
    bad = GOOD.replace("weight: 1.0", "weight: heavy").replace("max_score: 5.0", "max_score: [5]")
    p, r = _validate(tmp_path, bad)
    assert r.code == 2
    assert _errors(r.err) == [
        f"error: {p}:7: max_score: Input should be a valid number",
        f"error: {p}:11: criteria[0].weight: Input should be a valid number, unable to parse string as a number",
    ]


def test_validate_duplicate_question_id_across_files(tmp_path: Path) -> None:
    _validate(tmp_path, GOOD)
    p, r = _validate(tmp_path, GOOD.replace("id: q1\n", "id: q1\n", 1), name="q1.yml")
    assert r.code == 2
    errors = _errors(r.err)
    assert errors == [f"error: {p}:2: id: duplicate question id 'q1' in bank 'b' (also in {p.with_suffix('.yaml')})"]
    with pytest.raises(InputError) as e:  # loading stops at the same place, naming the same line
        load_rubrics(tmp_path / "rubrics")
    assert str(e.value) == f"{p}:2: id: duplicate question id 'q1' (also in {p.with_suffix('.yaml')})"


def test_validate_duplicate_key_and_criterion_id(tmp_path: Path) -> None:
    bad = GOOD.replace("bank: b\n", "bank: b\nbank: c\n") + (
        "  - id: c1\n    text: Another point.\n    weight: 0.5\n"
    )
    p, r = _validate(tmp_path, bad)
    assert r.code == 2
    errors = _errors(r.err)
    assert errors[0] == f"error: {p}:4: bank: duplicate key (first at line 3)"
    assert errors[1] == f"error: {p}:9: criteria: duplicate criterion id 'c1'"


def test_validate_unknown_field_and_id_mismatch(tmp_path: Path) -> None:
    p, r = _validate(tmp_path, GOOD.replace("    keywords: [bits]\n", "    keywords: [bits]\n    colour: red\n"),
                     name="other.yaml")
    assert r.code == 2
    assert _errors(r.err) == [f"error: {p}:13: criteria[0].colour: unknown field"]
    p.write_text(GOOD)
    r = run_cli("rubric", "validate", p)
    assert r.code == 2
    assert _errors(r.err) == [f"error: {p}:2: id: id 'q1' does not match the file name 'other.yaml'"]


def test_validate_ignores_non_rubric_files(tmp_path: Path) -> None:
    _validate(tmp_path, GOOD)
    (tmp_path / "rubrics" / "README.md").write_text("# notes\n")
    (tmp_path / "rubrics" / "rubric.schema.json").write_text("{}")
    r = run_cli("rubric", "validate", tmp_path / "rubrics")
    assert r.code == 0 and "1 rubrics OK" in r.out


def test_validate_committed_rubrics(repo_root: Path) -> None:
    r = run_cli("rubric", "validate", repo_root / "rubrics")
    assert r.code == 0, r.err
    assert r.out == "22 rubrics OK\n"


def test_load_rubric_raises_first_problem(tmp_path: Path) -> None:
    p = tmp_path / "q1.yaml"
    p.write_text(GOOD.replace("weight: 1.0", "weight: -1"))
    with pytest.raises(InputError) as e:
        load_rubric(p)
    assert str(e.value) == f"{p}:11: criteria[0].weight: Input should be greater than 0"


def test_written_file_is_a_plain_mapping(tmp_path: Path) -> None:
    p = write_rubric(_rubric(), tmp_path / "q1.yaml")
    data = yaml.safe_load(p.read_text())
    assert isinstance(data, dict) and data["criteria"][0]["origin"] == "auto"
    Criterion.model_validate(data["criteria"][0])


@pytest.mark.parametrize(
    "text",
    [
        "A line with trailing spaces   \nand a second line",
        "  leading spaces and a very long line that goes on and on past the folding width of the writer, yes",
        "Colons: hashes # and 'quotes' and \"double quotes\" in a long enough sentence to be folded by the writer",
        "Unicode café – naïve — 8-bit → fast, and a tab\there, long enough to be folded by the YAML writer too",
        "Math $P(y|x)$ and a list:\n\n- one\n- two\n\n1. step",
        "yes",
        "- starts like a bullet",
    ],
)
def test_round_trip_tricky_text(tmp_path: Path, text: str) -> None:
    q = Question(id="q1", question="Q?", reference_answer=text)
    r = build_rubric(q)
    r = r.model_copy(update={"reference_answer": text})
    path = write_rubric(r, tmp_path / "q1.yaml")
    assert load_rubric(path).reference_answer == text.strip()


def test_a_bank_read_quickly_equals_the_checked_read_and_leaves_broken_files_out(tmp_path: Path) -> None:
    from grader.paths import default_rubrics_dir
    from grader.rubric.store import load_bank_quickly, load_rubrics

    shipped = default_rubrics_dir() / "interview"
    assert load_bank_quickly(shipped) == load_rubrics(shipped)
    good = (shipped / "easy-2.yaml").read_text(encoding="utf-8")
    (tmp_path / "good.yaml").write_text(good, encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    # An alias goes to the checked loader, which refuses it: left out, not expanded.
    aliased = good.replace("id: easy-2", "id: easy-9").replace("difficulty: easy", "difficulty: &d easy")
    aliased = aliased.replace("topic: model compression", "topic: *d")
    assert aliased.count("*d") == 1
    (tmp_path / "alias.yaml").write_text(aliased, encoding="utf-8")
    quick = load_bank_quickly(tmp_path)
    assert [r.id for r in quick] == ["easy-2"]
    with pytest.raises(InputError):
        load_rubrics(tmp_path)
