"""Caveats the eval prints beside its figures, so that a reader does not take an in-sample figure as honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.embedding.calibration import provenance_shas, sha256_file
from grader.evaluation.datasets import Dataset
from grader.evaluation.runner import RunResult


def _provenance(calibration: Path) -> dict[str, Any] | None:
    """The calibration file's provenance ({} when it has none); None when the file cannot be read as JSON."""
    try:
        return json.loads(calibration.read_text(encoding="utf-8")).get("provenance") or {}
    except (OSError, ValueError, AttributeError):
        return None


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


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())


def _training_files(provenance: dict[str, object]) -> list[Path]:
    """The calibration's training data, where its provenance points (paths are written repo-relative): the data
    file, and every source of a joint fit."""
    from grader.paths import REPO_ROOT

    names = [provenance.get("data_file")]
    sources = provenance.get("sources")
    if isinstance(sources, list):
        names += [s.get("file") for s in sources if isinstance(s, dict)]
    out: list[Path] = []
    for name in dict.fromkeys(n for n in names if isinstance(n, str) and n):
        for candidate in (Path(name), REPO_ROOT / name):
            if candidate.is_file():
                out.append(candidate)
                break
    return out


def training_overlap(calibration: Path, dataset: Dataset) -> tuple[int, bool] | None:
    """(how many of the set's answers the calibration was fitted on, whether it is the very training file);
    None when that cannot be told.

    By the data file's hash first (the whole set), then by (question, answer) pairs against the training file the
    provenance names, so a subset or a copy of the training data is caught as well.
    """
    prov = _provenance(calibration)
    if prov is None:
        return None
    ds_path = Path(dataset.path)
    shas = provenance_shas(prov)
    try:
        if shas and ds_path.is_file() and sha256_file(ds_path) in shas:
            return len(dataset.items), True
    except OSError:
        pass
    trainings = _training_files(prov)
    if not trainings:
        return None
    seen: set[tuple[str, str]] = set()
    try:
        lines = [line for t in trainings for line in t.read_text(encoding="utf-8").splitlines()]
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "question" in row and "answer" in row:
                seen.add((_norm(row["question"]), _norm(row["answer"])))
    except OSError:
        return None
    return sum(1 for it in dataset.items if (_norm(it.question), _norm(it.answer)) in seen), False


def eval_notes(dataset: Dataset, runs: list[RunResult], calibrations: list[str | None] | None = None) -> list[str]:
    notes: list[str] = []
    in_sample: set[str] = set()
    for i, r in enumerate(runs):
        if r.cross_validated:
            continue
        cal = calibration_file(calibrations[i] if calibrations else r.calibration_path)
        found = training_overlap(cal, dataset) if cal is not None else None
        if found is None or found[0] == 0:
            continue
        overlap, same_file = found
        in_sample.add(r.label)
        has_cv = any(o.cross_validated and o.label == f"{r.label} (CV)" for o in runs)
        where = f"the '{r.label} (CV)' column" if has_cv else "`grader eval --cv`, `grader tune`"
        n = len(dataset.items)
        what = "IN-SAMPLE" if overlap == n else f"PARTLY IN-SAMPLE ({overlap} of {n} answers)"
        others = _other_sources(cal, dataset) if same_file else 0
        if others:
            # A joint fit pools grading standards: in-sample, yet it can fit this set worse than a fit on it alone.
            notes.append(
                f"{r.label}: {what}. Its calibration ({cal.name}) was fitted on this set together with {others} "
                f"other set(s), pooling their grading standards, so its figures here are neither held out nor "
                f"this set's own fit. The recipe refitted on this set alone, each question held out, is {where}."
            )
            continue
        notes.append(
            f"{r.label}: {what}. Its calibration ({cal.name}) was fitted on "
            f"{'this very data set' if same_file else 'data that includes these answers'}, so these figures "
            f"overstate agreement on new answers. The honest figure is question-grouped cross-validation: see "
            f"{where}.{_provenance_cv(cal) if same_file else ''}"
        )
    for r in runs:
        base_label = r.label.removesuffix(" (CV)")
        if r.cross_validated and base_label not in in_sample:
            notes.append(
                f"{base_label}: its calibration was not fitted on this set, so '{base_label}' is already a held-out "
                f"figure; '{r.label}' instead refits the calibration recipe on this set with each question held out, "
                "i.e. what calibrating on data like this would give."
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
    judge_runs = [r for r in runs if r.prompt is not None and not r.cross_validated]
    for r in judge_runs:
        fallback = sum(1 for it in r.items if it.status == "fallback")
        if fallback:
            notes.append(f"{r.label}: the judge failed on {fallback} answer(s); the offline score stood in (fallback).")
        cached = sum(1 for it in r.items if it.judge_cached)
        notes.append(f"{r.label}: {cached} of {len(r.items)} judge verdicts came from the judge cache.")
    return notes


def _other_sources(calibration: Path, dataset: Dataset) -> int:
    """How many sets besides this one the calibration was fitted on (0: this set alone, or not told)."""
    prov = _provenance(calibration)
    try:
        sha = sha256_file(Path(dataset.path))
    except OSError:
        return 0
    shas = provenance_shas(prov or {})
    return len(shas) - 1 if sha in shas else 0


def _provenance_cv(calibration: Path) -> str:
    """The calibration's own recorded CV figures, when it carries them."""
    cv = (_provenance(calibration) or {}).get("cv") or {}
    if not cv:
        return ""
    parts = [f"{k} {cv[k]:.3f}" for k in ("pearson", "spearman", "mae", "rmse") if isinstance(cv.get(k), int | float)]
    return f" Its provenance records {cv.get('scheme', 'grouped')} CV: {', '.join(parts)}." if parts else ""
