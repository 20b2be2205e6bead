"""Calibration file round-trip, fitting, and question-grouped cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader.embedding.calibration import (
    Calibration,
    CoverageMap,
    Gate,
    default_calibration_path,
    fit_calibration,
    sha256_file,
)
from grader.embedding.crossval import SignalRow, _splits, grouped_cv, main, read_graded_jsonl
from grader.errors import InputError


def _synthetic(n_q: int = 8, per_q: int = 30, seed: int = 0) -> tuple[list[dict[str, float]], list[float], list[str]]:
    rng = np.random.default_rng(seed)
    signals, targets, groups = [], [], []
    for q in range(n_q):
        for _ in range(per_q):
            a, b = rng.uniform(0, 1, 2)
            signals.append({"cos_ref_qd": a, "crit_recall_qd": b, "noise": rng.normal(), "topicality": 0.9})
            targets.append(float(np.clip(5 * (0.6 * a + 0.4 * b) + rng.normal(0, 0.2), 0, 5)))
            groups.append(f"q{q}")
    return signals, targets, groups


def test_shipped_calibration_loads_with_provenance(mohler_dev_path: Path, repo_root: Path) -> None:
    cal = Calibration.load(default_calibration_path())
    prov = cal.provenance
    assert prov.data_file is not None and prov.data_file.endswith("mohler/dev.jsonl")
    # The hashes say exactly which data the default was fitted on: Mohler dev and both development interview sets
    # (answers.jsonl, holdout.jsonl), each with the same total weight. The holdout sets (holdout-b/c/d, scored only
    # beside it, and holdout-e, the untouched one) must never be among them.
    assert prov.data_sha256 == sha256_file(mohler_dev_path)
    by_file = {Path(s.file).name: s for s in prov.sources}
    assert by_file["dev.jsonl"].sha256 == sha256_file(mohler_dev_path) and by_file["dev.jsonl"].n_rows == 1074
    for name in ("answers.jsonl", "holdout.jsonl"):
        path = repo_root / "eval" / "interview" / name
        assert by_file[name].sha256 == sha256_file(path) and by_file[name].n_rows == 220
        assert abs(by_file["dev.jsonl"].weight * 1074 - by_file[name].weight * 220) < 1e-6
    assert not {f"holdout-{x}.jsonl" for x in "bcde"} & by_file.keys()
    assert prov.n_rows == 1514 and prov.n_questions == 81
    assert prov.cv is not None and prov.cv.scheme == "leave-one-question-out"
    assert cal.cap is not None and {g.signal for g in cal.all_gates()} >= {"topic_margin", "statement"}
    assert cal.stretch >= 1.0
    assert prov.model == "all-MiniLM-L6-v2"
    assert "in-sample" in prov.notes
    assert len(cal.coefficients) == len(cal.features) == len(cal.scaler_mean) == len(cal.scaler_scale)


def test_calibration_round_trips(tmp_path: Path) -> None:
    signals, targets, groups = _synthetic()
    cal = fit_calibration(
        signals, targets, groups, [5.0] * len(targets), features=["cos_ref_qd", "crit_recall_qd", "cos_ref_qd^2"],
        gate=Gate(signal="topicality", lo=0.05, hi=0.2), coverage=CoverageMap(lo=0.2, hi=0.8), name="synthetic",
    )
    path = cal.save(tmp_path / "sub" / "cal.json")
    data = json.loads(path.read_text())  # readable JSON, not a pickle
    assert data["features"] == ["cos_ref_qd", "crit_recall_qd", "cos_ref_qd^2"]
    back = Calibration.load(path)
    assert back == cal
    for s in signals[:20]:
        assert back.predict(s, 5.0) == cal.predict(s, 5.0)


def test_fit_recovers_a_linear_relation_and_reports_grouped_cv() -> None:
    signals, targets, groups = _synthetic()
    cal = fit_calibration(signals, targets, groups, [5.0] * len(targets), features=["cos_ref_qd", "crit_recall_qd"])
    assert cal.provenance.cv is not None
    assert cal.provenance.cv.pearson > 0.9
    assert cal.provenance.cv.folds == 8
    assert cal.provenance.n_questions == 8
    hi = cal.predict({"cos_ref_qd": 1.0, "crit_recall_qd": 1.0}, 5.0)
    lo = cal.predict({"cos_ref_qd": 0.0, "crit_recall_qd": 0.0}, 5.0)
    assert hi == pytest.approx(5.0, abs=0.3) and lo == pytest.approx(0.0, abs=0.3)


def test_grouped_cv_holds_out_whole_questions() -> None:
    groups = np.array([f"q{i % 7}" for i in range(70)])
    for folds in (None, 3):
        tests = _splits(groups, folds)
        assert sum(int(t.sum()) for t in tests) == len(groups)  # every row predicted exactly once
        for t in tests:
            assert not set(groups[t]) & set(groups[~t])
    rows = [SignalRow(signals={"x": float(i % 7)}, score=float(i % 5) + 0.1 * (i % 3), max_score=5.0, group=g)
            for i, g in enumerate(groups)]
    assert grouped_cv(rows, features=["x"], gate=None)["folds"] == 7
    gkf = grouped_cv(rows, features=["x"], gate=None, folds=3)
    assert gkf["folds"] == 3 and gkf["scheme"].startswith("GroupKFold")


def test_gate_scales_to_zero_below_lo() -> None:
    gate = Gate(signal="topicality", lo=0.1, hi=0.3)
    assert gate.factor({"topicality": 0.05}) == 0.0
    assert gate.factor({"topicality": 0.2}) == pytest.approx(0.5)
    assert gate.factor({"topicality": 0.9}) == 1.0


def test_bad_calibration_file_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps({"name": "x", "features": ["cos_ref"]}))
    with pytest.raises(InputError) as e:
        Calibration.load(bad)
    assert str(bad) in str(e.value) and e.value.field is not None
    with pytest.raises(InputError):
        Calibration.load(tmp_path / "missing.json")


def test_fit_needs_two_questions() -> None:
    signals, targets, groups = _synthetic(n_q=1)
    with pytest.raises(InputError):
        fit_calibration(signals, targets, groups, [5.0] * len(targets), features=["cos_ref_qd"])


def test_graded_jsonl_errors_name_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "g.jsonl"
    good = {"question_id": "1", "question": "Q?", "reference_answer": "R.", "answer": "A.", "score": 4}
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "score": "lots"}) + "\n")
    with pytest.raises(InputError) as e:
        read_graded_jsonl(f)
    assert e.value.line == 2 and e.value.field == "score"
    assert main([str(f)]) == 2
    assert f"{f}:2: score:" in capsys.readouterr().err


def test_stretch_moves_grades_away_from_the_mean_and_keeps_zero_and_the_clip(tmp_path: Path) -> None:
    one = Calibration(name="s", features=["cos_ref"], scaler_mean=[0.0], scaler_scale=[1.0], coefficients=[1.0],
                      intercept=0.0)
    stretched = one.model_copy(update={"stretch": 1.25})
    assert stretched.fraction({"cos_ref": 0.6}) == pytest.approx(0.75)
    assert one.fraction({"cos_ref": 0.6}) == pytest.approx(0.6)
    assert stretched.fraction({"cos_ref": 0.0}) == 0.0
    assert stretched.fraction({"cos_ref": 0.9}) == 1.0  # clipped, never above the maximum
    # A calibration written before the stretch existed loads with none; a shrinking "stretch" is refused.
    data = json.loads(one.model_dump_json())
    data.pop("stretch")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert Calibration.load(old).stretch == 1.0
    data["stretch"] = 0.8
    old.write_text(json.dumps(data))
    with pytest.raises(InputError) as e:
        Calibration.load(old)
    assert e.value.field == "stretch"


def test_refit_agrees_by_qwk_on_whole_grades_and_by_squared_error_on_averaged_ones() -> None:
    from grader.embedding.crossval import cv_predictions
    from grader.embedding.refit import STRETCHES, fit_cap

    rng = np.random.default_rng(3)
    rows: list[SignalRow] = []
    for q in range(6):
        for _ in range(40):
            c = float(rng.uniform(0, 1))
            human = float(np.clip(np.rint(5 * c + rng.normal(0, 0.7)), 0, 5))
            sig = {"cos_ref_qd": c + rng.normal(0, 0.15), "crit_recall_true": c, "contradicted_weight": 0.0,
                   "credited": c, "point_words_true": c, "topic_margin": 0.5, "statement": 1.0,
                   "generic_margin_qd": 0.5}
            rows.append(SignalRow(signals=sig, score=human, max_score=5.0, group=f"set:q{q}"))
    margin, stretch = fit_cap(rows)
    assert stretch in STRETCHES and margin > 0
    # Whatever it chose is the best QWK on the grid's stretches at that margin.
    from grader.embedding.calibration import Cap
    from grader.evaluation.metrics import qwk

    y = np.array([r.score for r in rows])
    best = qwk(y, cv_predictions(rows, cap=Cap(margin=margin), stretch=stretch), 5.0)
    assert all(best >= qwk(y, cv_predictions(rows, cap=Cap(margin=margin), stretch=s), 5.0) - 1e-9 for s in STRETCHES)
    halves = [SignalRow(signals=r.signals, score=r.score + 0.5 * (r.score < 5), max_score=5.0, group=r.group)
              for r in rows]
    assert fit_cap(halves)[1] == 1.0
