"""`grader bench agreement` compares each runtime's grades with the torch runtime's on the same answers."""

from __future__ import annotations

import json
from pathlib import Path

from grader.bench.agreement import LIMITS, compare


def _small_set(src: Path, dst: Path, questions: int = 4, per_question: int = 8) -> Path:
    rows: dict[str, list[str]] = {}
    for line in src.read_text(encoding="utf-8").splitlines():
        qid = json.loads(line)["question_id"]
        if len(rows) < questions or qid in rows:
            rows.setdefault(qid, [])
            if len(rows[qid]) < per_question:
                rows[qid].append(line)
    dst.write_text("".join(line + "\n" for lines in rows.values() for line in lines), encoding="utf-8")
    return dst


def test_onnx_agrees_with_torch_and_the_report_says_so(tmp_path: Path, mohler_dev_path: Path) -> None:
    data = _small_set(mohler_dev_path, tmp_path / "small.jsonl")
    report = compare(["onnx"], {"mohler": data})
    assert report["reference"] == "torch" and report["limits"] == LIMITS
    torch, onnx = report["runtimes"]["torch"]["mohler"], report["runtimes"]["onnx"]["mohler"]
    assert torch["n"] == onnx["n"] == 32
    assert torch["max_score_diff"] == 0.0  # the reference against itself
    assert onnx["max_score_diff"] < 0.01 and onnx["answers_over_limit"] == 0
    assert abs(onnx["cv_pearson_diff"]) < 0.001 and abs(onnx["qwk_diff"]) <= 0.01
    assert report["runtimes"]["onnx"]["checks"] == {"mohler_cv_pearson": True, "interview_qwk": True,
                                                    "every_score": True}
    assert report["runtimes"]["onnx"]["within_limits"] is True
