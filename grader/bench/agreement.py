"""Does the embedding runtime change the grades? Every runtime against the torch runtime, on two graded sets.

    grader bench agreement            (or: python -m grader.bench.agreement)

For each runtime the two eval sets are graded offline exactly as `grader eval --judge none --cv` grades
them (the evaluation runner, the shipped calibration, and the leave-one-question-out refit for the CV
column), then compared with the torch runtime's grades of the same answers:

- Mohler dev (../shared/data/mohler/dev.jsonl): Pearson r of the leave-one-question-out scores with the
  human scores; limit: within 0.005 of torch's.
- The interview eval set (eval/interview/answers.jsonl): QWK of the shipped-calibration scores; limit:
  within 0.01 of torch's (the CV QWK is printed beside it).
- Every answer of both sets: |score − torch's score|, for the shipped-calibration and the CV scores;
  limit: at most 0.15 on the set's scale.

A runtime that meets all three is "within limits"; the default runtime is the fastest of those
(`grader bench offline` gives the speed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from grader.config import Settings

LIMITS = {"pearson": 0.005, "qwk": 0.01, "score": 0.15}
REFERENCE = "torch"
DEFAULT_RUNTIMES = ("torch", "onnx", "onnx-int8")


def default_sets() -> dict[str, Path]:
    from grader.paths import REPO_ROOT, mohler_dev

    return {"mohler": mohler_dev(), "interview": REPO_ROOT / "eval" / "interview" / "answers.jsonl"}


def grade_set(path: Path, runtime: str, base: Settings | None = None) -> dict[str, Any]:
    """One eval set graded offline on one runtime: per-answer scores (shipped and CV) and the metrics."""
    from grader.evaluation.datasets import load_dataset
    from grader.evaluation.metrics import qwk
    from grader.evaluation.runner import cross_validated, run

    settings = (base or Settings()).model_copy(deep=True)
    settings.judge.backend = "none"
    settings.embedding.runtime = runtime  # type: ignore[assignment]
    ds = load_dataset(path)
    t0 = time.perf_counter()
    result = run(ds, settings, label=runtime)
    elapsed = time.perf_counter() - t0
    cv = cross_validated(result, settings, ds.max_score)
    human = np.array([it.human for it in result.items])
    shipped = np.array([it.combined for it in result.items], dtype=float)
    cv_by_index = {it.index: it.combined for it in cv.items}
    held_out = np.array([cv_by_index.get(it.index, np.nan) for it in result.items], dtype=float)
    ok = ~np.isnan(held_out)
    return {
        "index": [it.index for it in result.items],
        "scores": shipped,
        "cv_scores": held_out,
        "pearson": float(np.corrcoef(shipped, human)[0, 1]),
        "cv_pearson": float(np.corrcoef(held_out[ok], human[ok])[0, 1]),
        "qwk": qwk(human, shipped, ds.max_score),
        "cv_qwk": qwk(human[ok], held_out[ok], ds.max_score),
        "n": len(result.items),
        "max_score": ds.max_score,
        "grading_s": round(elapsed, 2),
    }


def compare(runtimes: list[str], sets: dict[str, Path], base: Settings | None = None) -> dict[str, Any]:
    """Each runtime's metrics and its largest per-answer difference from the torch runtime's scores."""
    names = [REFERENCE, *[r for r in runtimes if r != REFERENCE]]
    graded = {(rt, name): grade_set(path, rt, base) for rt in names for name, path in sets.items()}
    report: dict[str, Any] = {"benchmark": "agreement", "reference": REFERENCE, "limits": LIMITS, "runtimes": {}}
    for rt in names:
        row: dict[str, Any] = {}
        within = True
        for name in sets:
            mine, ref = graded[(rt, name)], graded[(REFERENCE, name)]
            assert mine["index"] == ref["index"]
            diff = np.abs(mine["scores"] - ref["scores"])
            cv_diff = np.abs(mine["cv_scores"] - ref["cv_scores"])
            entry = {
                "n": mine["n"],
                "pearson": round(mine["pearson"], 4),
                "cv_pearson": round(mine["cv_pearson"], 4),
                "qwk": round(mine["qwk"], 4),
                "cv_qwk": round(mine["cv_qwk"], 4),
                "max_score_diff": round(float(diff.max()), 4),
                "mean_score_diff": round(float(diff.mean()), 4),
                "max_cv_score_diff": round(float(np.nanmax(cv_diff)), 4),
                # answers whose shipped-calibration or CV score moved by more than the limit
                "answers_over_limit": int(((diff > LIMITS["score"]) | (cv_diff > LIMITS["score"])).sum()),
                "grading_s": mine["grading_s"],
            }
            if rt != REFERENCE:
                entry["cv_pearson_diff"] = round(mine["cv_pearson"] - ref["cv_pearson"], 4)
                entry["qwk_diff"] = round(mine["qwk"] - ref["qwk"], 4)
                entry["cv_qwk_diff"] = round(mine["cv_qwk"] - ref["cv_qwk"], 4)
            row[name] = entry
        if rt != REFERENCE:
            checks = {
                "mohler_cv_pearson": abs(row["mohler"]["cv_pearson_diff"]) <= LIMITS["pearson"]
                if "mohler" in row else True,
                "interview_qwk": abs(row["interview"]["qwk_diff"]) <= LIMITS["qwk"] if "interview" in row else True,
                "every_score": all(row[n]["answers_over_limit"] == 0 for n in sets),
            }
            within = all(checks.values())
            row["checks"] = checks
        row["within_limits"] = within
        report["runtimes"][rt] = row
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader.bench.agreement", description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", action="append", dest="runtimes", help="runtime to compare (repeatable)")
    args = ap.parse_args(argv)
    print(json.dumps(compare(args.runtimes or list(DEFAULT_RUNTIMES), default_sets()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
