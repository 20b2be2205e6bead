"""The pooled confidence refit: held-out scores come from a recipe that never saw the question."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.embedding.calibration import Calibration, default_calibration_path
from grader.embedding.crossval import SignalRow
from grader.evaluation.refit_confidence import held_out, loqo


def _rows(n_questions: int = 6, per: int = 12) -> list[SignalRow]:
    cal = Calibration.load(default_calibration_path())
    names = {f.split("^")[0] for f in cal.features} | {g.signal for g in cal.all_gates()}
    names |= {"credited", "crit_recall_true", "contradicted_weight"}
    rng = np.random.default_rng(3)
    rows = []
    for q in range(n_questions):
        for _ in range(per):
            sig = {name: float(rng.uniform(0.2, 1.0)) for name in names} | {"statement": 1.0}
            rows.append(SignalRow(signals=sig, score=5 * sig["credited"], max_score=5.0, group=f"q{q}"))
    return rows


def test_held_out_scores_equal_leave_one_question_out() -> None:
    cal = Calibration.load(default_calibration_path())
    rows = _rows()
    pred = loqo(cal, rows)
    groups = np.array([r.group for r in rows])
    for q in ("q0", "q3"):
        test, train = np.flatnonzero(groups == q), np.flatnonzero(groups != q)
        np.testing.assert_allclose(held_out(cal, rows, train, test), pred[test])
    # and the held-out score does depend on what it was trained on: another training set, another score
    test = np.flatnonzero(groups == "q0")
    fewer = np.flatnonzero(np.isin(groups, ["q1", "q2"]))
    assert not np.allclose(held_out(cal, rows, fewer, test), pred[test])


def test_refit_writes_a_pooled_model_with_each_set_weighted_equally(
    tmp_path: Path, mohler_dev_path: Path, repo_root: Path
) -> None:
    import json

    from grader.evaluation.refit_confidence import main
    from grader.pipeline.confidence import ConfidenceModel

    # Two small sets of different sizes: four Mohler questions and three interview questions.
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    rows = [json.loads(line) for line in mohler_dev_path.read_text(encoding="utf-8").splitlines()]
    keep = sorted({r["question_id"] for r in rows})[:4]
    big.write_text("".join(json.dumps(r) + "\n" for r in rows if r["question_id"] in keep), encoding="utf-8")
    rows = [json.loads(line) for line in (repo_root / "eval/interview/answers.jsonl").read_text("utf-8").splitlines()]
    keep = sorted({r["question_id"] for r in rows})[:3]
    small.write_text("".join(json.dumps(r) + "\n" for r in rows if r["question_id"] in keep), encoding="utf-8")
    out = tmp_path / "confidence.json"
    assert main([str(big), str(small), "--review-share", "0.3", "--folds", "0", "--write", str(out)]) == 0
    model = ConfidenceModel.load(out)
    assert model.review_share == 0.3 and model.trees
    sources = model.provenance["sources"]
    assert [s["file"].rsplit("/", 1)[-1] for s in sources] == ["big.jsonl", "small.jsonl"]
    totals = [s["n_rows"] * s["weight"] for s in sources]
    assert sources[0]["n_rows"] > 2 * sources[1]["n_rows"] and abs(totals[0] - totals[1]) < 1e-6
    assert set(model.provenance["cv"]) >= {"scheme"} and len(model.provenance["cv"]) == 3  # scheme + one per set
