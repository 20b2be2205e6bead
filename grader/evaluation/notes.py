"""Caveats the eval prints beside its figures, so that a reader does not take an in-sample figure as honest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grader.evaluation.datasets import Dataset
from grader.evaluation.runner import RunResult


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def calibration_file(path_or_none: str | None) -> Path | None:
    """The calibration JSON a run used: its configured path, else the shipped default."""
    if path_or_none:
        p = Path(path_or_none)
        return p if p.is_file() else None
    try:
        from grader.embedding.calibration import default_calibration_path
    except ImportError:
        return None
    p = Path(default_calibration_path())
    return p if p.is_file() else None


def fitted_on(calibration: Path, dataset: Path) -> bool:
    """True when the calibration's provenance names this data set (by hash, or by its shared-data path)."""
    try:
        text = calibration.read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, ValueError):
        return False
    try:
        if _sha256(dataset) in text:
            return True
    except OSError:
        return False
    parts = dataset.resolve().parts
    tail = "/".join(parts[-2:])  # e.g. "mohler/dev.jsonl"
    return tail in text


def eval_notes(dataset: Dataset, runs: list[RunResult], calibrations: list[str | None] | None = None) -> list[str]:
    notes: list[str] = []
    ds_path = Path(dataset.path)
    for i, r in enumerate(runs):
        cal = calibration_file(calibrations[i] if calibrations else r.calibration_path)
        if cal is not None and ds_path.is_file() and fitted_on(cal, ds_path):
            notes.append(
                f"{r.label}: IN-SAMPLE. The calibration ({cal.name}) was fitted on this very data set, so these "
                "figures overstate agreement on new answers. The honest figure is the question-grouped "
                "cross-validated one printed by `grader tune` (or `python -m grader.embedding.crossval`)."
            )
    built = sorted({q for r in runs for q, src in r.rubric_sources.items() if src != "stored"})
    if built:
        notes.append(
            f"{len(built)} question(s) had no stored rubric with the same id and question text; their rubrics were "
            "built from the eval rows with the deterministic builder."
        )
    if dataset.has_second_grader:
        notes.append(
            "Human-human agreement compares grader A with grader B. The grader is scored against the set's `score` "
            "(for Mohler the mean of A and B, a less noisy target than either); 'combined vs human A/B alone' is "
            "the like-for-like comparison with human A vs B."
        )
    judge_runs = [r for r in runs if r.prompt is not None]
    for r in judge_runs:
        fallback = sum(1 for it in r.items if it.status == "fallback")
        if fallback:
            notes.append(f"{r.label}: the judge failed on {fallback} answer(s); the offline score stood in (fallback).")
        cached = sum(1 for it in r.items if it.judge_cached)
        notes.append(f"{r.label}: {cached} of {len(r.items)} judge verdicts came from the judge cache.")
    return notes
