"""The eval says when a figure is in-sample: the calibration was fitted on these answers (all or some)."""

from __future__ import annotations

import json
from pathlib import Path

from grader.evaluation.datasets import Dataset, EvalItem
from grader.evaluation.notes import eval_notes, training_overlap
from grader.evaluation.runner import RunResult


def _calibration(tmp_path: Path, data_file: Path, sha: str | None = None) -> Path:
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps({"name": "x", "provenance": {"data_file": str(data_file), "data_sha256": sha,
                                                          "cv": {"pearson": 0.5, "scheme": "leave-one-question-out"}}}))
    return cal


def test_partial_overlap_with_the_training_data_is_reported(tmp_path: Path, mohler_dev_path: Path) -> None:
    first = json.loads(mohler_dev_path.read_text().splitlines()[0])
    seen = EvalItem(**{k: first[k] for k in ("question_id", "question", "reference_answer", "answer", "score")})
    new = seen.model_copy(update={"answer": "An answer nobody graded before."})
    ds = Dataset(path=str(tmp_path / "set.jsonl"), items=[seen, new])
    cal = _calibration(tmp_path, mohler_dev_path)
    assert training_overlap(cal, ds) == (1, False)
    run = RunResult(label="cfg", judge="none", items=[], elapsed_s=0, calibration_path=str(cal))
    notes = eval_notes(ds, [run])
    assert notes[0].startswith("cfg: PARTLY IN-SAMPLE (1 of 2 answers).")


def test_same_file_by_hash_and_unrelated_data(tmp_path: Path, mohler_dev_path: Path) -> None:
    import hashlib

    data = tmp_path / "set.jsonl"
    data.write_text('{"question": "q", "reference_answer": "r", "answer": "a", "score": 1}\n')
    ds = Dataset(path=str(data), items=[EvalItem(question="q", reference_answer="r", answer="a", score=1)])
    same = _calibration(tmp_path, tmp_path / "gone.jsonl", hashlib.sha256(data.read_bytes()).hexdigest())
    assert training_overlap(same, ds) == (1, True)
    note = eval_notes(ds, [RunResult(label="c", judge="none", items=[], elapsed_s=0, calibration_path=str(same))])[0]
    assert note.startswith("c: IN-SAMPLE.") and "leave-one-question-out CV: pearson 0.500" in note
    other = _calibration(tmp_path, mohler_dev_path)
    assert training_overlap(other, ds) == (0, False)
    assert not any("IN-SAMPLE" in n for n in eval_notes(
        ds, [RunResult(label="c", judge="none", items=[], elapsed_s=0, calibration_path=str(other))]))
    missing = _calibration(tmp_path, tmp_path / "nowhere.jsonl")
    assert training_overlap(missing, ds) is None


def test_a_joint_fit_is_named_as_pooling_standards_not_as_overstating(tmp_path: Path) -> None:
    import hashlib

    data = tmp_path / "set.jsonl"
    data.write_text('{"question": "q", "reference_answer": "r", "answer": "a", "score": 1}\n')
    ds = Dataset(path=str(data), items=[EvalItem(question="q", reference_answer="r", answer="a", score=1)])
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    cal = tmp_path / "joint.json"
    cal.write_text(json.dumps({"name": "j", "provenance": {"data_file": "other.jsonl", "sources": [
        {"file": "other.jsonl", "sha256": "0" * 64, "n_rows": 5}, {"file": str(data), "sha256": sha, "n_rows": 1}]}}))
    note = eval_notes(ds, [RunResult(label="c", judge="none", items=[], elapsed_s=0, calibration_path=str(cal))])[0]
    assert note.startswith("c: IN-SAMPLE.") and "together with 1 other set(s)" in note
    assert "overstate" not in note
