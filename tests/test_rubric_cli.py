"""`grader rubric show` and `grader rubric build`: rebuilding never loses what a person wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli, run_cli_subprocess

from grader.models import Criterion, Question
from grader.rubric.build import merge_criteria
from grader.rubric.deterministic import build_criteria, build_rubric
from grader.rubric.store import load_rubric, write_rubric

QUESTION = Question(
    id="medium-2",
    bank="t",
    question="How does quantization help in model compression?",
    reference_answer=(
        "Quantization reduces the number of bits required to represent each weight in the model, typically from "
        "32-bit floating-point to 8-bit integers. This reduces the model size and can speed up inference by "
        "allowing the use of more efficient hardware operations."
    ),
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_rubric(build_rubric(QUESTION), tmp_path / "t" / "medium-2.yaml")
    return tmp_path


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_show_committed_easy_2(repo_root: Path) -> None:
    r = run_cli("rubric", "show", "easy-2", "--rubrics", repo_root / "rubrics")
    assert r.code == 0, r.err
    out = " ".join(r.out.split())
    assert "What is pruning in model compression?" in out
    assert "Reference answer" in out and "removing weights that are less important" in out
    rubric = load_rubric(repo_root / "rubrics" / "interview" / "easy-2.yaml")
    assert "Key points" in r.out
    for c in rubric.criteria:
        assert c.id in r.out and f"{c.weight:.2f}" in r.out
    # Each accepted phrasing is listed under its point.
    assert r.out.count("also:") == sum(len(c.synonyms) for c in rubric.criteria) > 0


def test_show_by_subprocess_from_repo_root(repo_root: Path) -> None:
    r = run_cli_subprocess("rubric", "show", "interview/easy-2", cwd=repo_root)
    assert r.code == 0, r.err
    assert "pruning" in r.out.lower()


def test_show_unknown_id(folder: Path) -> None:
    r = run_cli("rubric", "show", "nope", "--rubrics", folder)
    assert r.code == 2
    assert r.err == f"error: unknown question id 'nope': no rubric for it in {folder}/\n"


def test_show_json(folder: Path) -> None:
    import json

    r = run_cli("rubric", "show", "medium-2", "--rubrics", folder, "--json")
    assert r.code == 0 and json.loads(r.out)["id"] == "medium-2"


def test_rebuild_keeps_hand_edited_criterion_and_other_edits(folder: Path) -> None:
    path = folder / "t" / "medium-2.yaml"
    original = load_rubric(path)

    def edit(data: dict) -> None:
        data["question"] = "How does quantization compress a model?"  # a hand edit of another field
        data["criteria"][0]["text"] = "Quantization stores each weight in fewer bits (32-bit float to 8-bit int)."
        data["criteria"].append({"id": "h1", "text": "Quantization can cost a little accuracy.", "weight": 0.2,
                                 "origin": "human"})

    _edit(path, edit)
    r = run_cli("rubric", "build", "medium-2", "--rubrics", folder, "--builder", "deterministic")
    assert r.code == 0, r.err
    assert "medium-2: kept c1 (edited by hand)" in r.out
    assert "medium-2: kept h1 (written by hand)" in r.out
    rebuilt = load_rubric(path)
    assert rebuilt.question == "How does quantization compress a model?"
    texts = [c.text for c in rebuilt.criteria]
    assert texts[0] == "Quantization stores each weight in fewer bits (32-bit float to 8-bit int)."
    assert "Quantization can cost a little accuracy." in texts
    # The edited point replaces the builder's version of it: no duplicate of the original c1.
    assert original.criteria[0].text not in texts
    assert texts[1:3] == [c.text for c in original.criteria[1:3]]
    assert len({c.id for c in rebuilt.criteria}) == len(rebuilt.criteria)

    r = run_cli("rubric", "build", "medium-2", "--rubrics", folder, "--builder", "deterministic", "--force")
    assert r.code == 0
    forced = load_rubric(path)
    assert [c.text for c in forced.criteria] == [c.text for c in original.criteria]
    assert forced.question == "How does quantization compress a model?"  # --force rebuilds points only


def test_rebuild_uses_the_files_reference_answer(folder: Path) -> None:
    path = folder / "t" / "medium-2.yaml"
    _edit(path, lambda d: d.update(reference_answer="Quantization stores weights in fewer bits to save memory."))
    assert run_cli("rubric", "build", "--rubrics", folder, "--builder", "deterministic").code == 0
    rebuilt = load_rubric(path)
    assert [c.text for c in rebuilt.criteria] == ["Quantization stores weights in fewer bits to save memory."]


def test_rebuild_reports_bad_files_and_goes_on(folder: Path) -> None:
    bad = folder / "t" / "broken.yaml"
    bad.write_text("id: broken\nquestion: [\n")
    r = run_cli("rubric", "build", "--rubrics", folder, "--builder", "deterministic")
    assert r.code == 2
    assert f"error: {bad}:3: bad YAML" in r.err
    assert "medium-2: " in r.out  # the good file was still rebuilt


def test_merge_criteria_unit() -> None:
    new = build_criteria(QUESTION.question, QUESTION.reference_answer)
    edited = new[1].model_copy(update={"weight": 0.5})  # weight changed by hand, fingerprint kept
    assert edited.edited_by_hand
    human = Criterion(id="c3", text="A point a person added.", weight=0.1, origin="human")
    merged = merge_criteria([new[0], edited, human], new)
    assert [c.text for c in merged.criteria] == [c.text for c in new] + ["A point a person added."]
    assert merged.criteria[1].weight == 0.5
    assert [c.id for c in merged.criteria] == ["c1", "c2", "c4", "c3"]  # kept ids stay; new ones skip them
    assert merged.replaced == 1
    assert [c.text for c in merge_criteria([edited, human], new, force=True).criteria] == [c.text for c in new]


def test_unknown_builder_is_an_input_error(folder: Path) -> None:
    r = run_cli("rubric", "build", "--rubrics", folder, "--builder", "magic")
    assert r.code == 2
    assert r.err == "error: --builder: unknown builder 'magic' (choose deterministic, llm, auto)\n"


def test_validate_missing_path(tmp_path: Path) -> None:
    r = run_cli("rubric", "validate", tmp_path / "nowhere")
    assert r.code == 2
    assert r.err == f"error: {tmp_path / 'nowhere'}: no such rubric file or folder\n"


def test_rebuild_leaves_an_unchanged_file_alone(folder: Path) -> None:
    path = folder / "t" / "medium-2.yaml"
    before = path.stat().st_mtime_ns
    r = run_cli("rubric", "build", "medium-2", "--rubrics", folder, "--builder", "deterministic")
    assert r.code == 0, r.err
    assert f"medium-2: unchanged (3 key points) {path}" in r.out
    assert path.stat().st_mtime_ns == before


def test_rebuild_keeps_a_commented_file_as_bak(folder: Path) -> None:
    path = folder / "t" / "medium-2.yaml"
    _edit(path, lambda d: d.update(question="How does quantization compress a model?"))
    commented = "# Reviewed with the ML team, 2026-11: keep c2 short.\n" + path.read_text()
    path.write_text(commented)
    r = run_cli("rubric", "build", "medium-2", "--rubrics", folder, "--builder", "deterministic", "--force")
    assert r.code == 0, r.err
    backup = folder / "t" / "medium-2.yaml.bak"
    assert f"old file kept as {backup}" in r.out
    assert backup.read_text() == commented
    assert not path.read_text().startswith("#")  # the rewrite cannot keep comments; the .bak has them
    assert load_rubric(path).question == "How does quantization compress a model?"


def test_list_shows_every_question_with_its_scale(repo_root: Path) -> None:
    r = run_cli_subprocess("rubric", "list", cwd=repo_root)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["id", "max", "points", "question"]
    rows = [line for line in lines[1:] if line.startswith("interview/")]
    assert len(rows) == 22
    easy2 = next(line for line in rows if line.startswith("interview/easy-2 "))
    rubric = load_rubric(repo_root / "rubrics" / "interview" / "easy-2.yaml")
    assert easy2.split()[1:3] == [f"{rubric.max_score:g}", str(len(rubric.criteria))]
    assert easy2.endswith("What is pruning in model compression?")
    # Natural order: easy-2 before easy-10 would be; easy-1 .. easy-6 in order.
    easy = [line.split()[0] for line in rows if line.startswith("interview/easy-")]
    assert easy == [f"interview/easy-{i}" for i in range(1, 7)]
    assert "grader grade --question-id" in lines[-1]


def test_list_by_bank_json_and_a_mistyped_bank(folder: Path) -> None:
    import json

    write_rubric(build_rubric(QUESTION.model_copy(update={"id": "q9", "bank": "other", "max_score": 10.0})),
                 folder / "other" / "q9.yaml")
    r = run_cli("rubric", "list", "--rubrics", folder, "--bank", "other", "--json")
    assert r.code == 0, r.err
    entries = json.loads(r.out)
    assert [(e["bank"], e["id"], e["max_score"]) for e in entries] == [("other", "q9", 10.0)]
    r = run_cli("rubric", "list", "--rubrics", folder, "--bank", "othr")
    assert r.code == 2 and "no bank 'othr'" in r.err and "did you mean 'other'?" in r.err


def test_list_reports_a_broken_file_and_lists_the_rest(folder: Path) -> None:
    bad = folder / "t" / "broken.yaml"
    bad.write_text("id: broken\nquestion: [unclosed\n")
    r = run_cli("rubric", "list", "--rubrics", folder)
    assert r.code == 2
    assert "t/medium-2" in r.out and str(bad) in r.err


def test_unknown_id_suggests_close_ids(folder: Path) -> None:
    r = run_cli("rubric", "show", "medium2", "--rubrics", folder)
    assert r.code == 2
    assert r.err == (f"error: unknown question id 'medium2': no rubric for it in {folder}/; did you mean "
                     "'medium-2'? (`grader rubric list` shows every id)\n")
