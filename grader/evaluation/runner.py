"""Grade an eval set with one configuration and keep every component of every grade.

The runner goes through the public ``Grader`` API (``agrade_many``), so an eval measures exactly what
``grader grade``/``batch`` would produce, and judge calls go through the judge cache: re-running a comparison
costs no judge calls and gives identical figures.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from grader.config import Settings
from grader.errors import InputError
from grader.evaluation.datasets import Dataset, EvalItem
from grader.models import GradeResult, Rubric
from grader.pipeline.confidence import FACT_CODES

Progress = Callable[[int, int], None]


class ItemOutcome(BaseModel):
    """One answer: the human grade(s) and each component's score on the set's scale (None = no score)."""

    index: int
    question_id: str
    answer_id: str | None = None
    answer_kind: str | None = None
    human: float
    human_a: float | None = None
    human_b: float | None = None
    combined: float | None = None
    embedding: float | None = None
    judge: float | None = None
    status: str
    judge_error: str | None = None
    judge_cached: bool | None = None
    flagged: bool = Field(default=False, description="The pipeline warned that the answer addresses the grader.")
    signals: dict[str, float] = Field(default_factory=dict)
    judge_open: float | None = Field(default=None, description="Share of key points the judge left open.")
    judge_spread: float | None = Field(default=None, description="Judge samples' standard deviation (set's scale).")
    confidence: float | None = None
    review: list[str] = Field(default_factory=list, description="Review reason codes of the grade.")
    review_facts: list[str] = Field(
        default_factory=list, description="The reasons that are facts (judge failed, manipulation, ...), kept for CV."
    )


class RunResult(BaseModel):
    label: str
    config_path: str | None = None
    judge: str = Field(description="Which judge graded, as Grader.describe_judge() puts it.")
    prompt: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    calibration: str | None = None
    calibration_path: str | None = Field(default=None, description="Configured calibration file; None: shipped.")
    items: list[ItemOutcome]
    skipped: list[str] = Field(default_factory=list, description="Answers the grader refused, with why.")
    rubric_sources: dict[str, str] = Field(default_factory=dict, description="question id -> rubric origin")
    elapsed_s: float
    cross_validated: bool = Field(default=False, description="Embedding scores are held-out (see --cv).")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def resolve_rubrics(dataset: Dataset, grader: object) -> tuple[dict[str, Rubric], dict[str, str]]:
    """A rubric per question: the stored one when its id and question text match, else built from the row.

    The text check matters: Mohler's question ids ("1.1") could collide with another bank's ids, and grading
    against another question's rubric would be silently wrong.
    """
    from grader.rubric.deterministic import build_rubric

    rubrics: dict[str, Rubric] = {}
    sources: dict[str, str] = {}
    first: dict[str, EvalItem] = {}
    for item in dataset.items:
        first.setdefault(item.group, item)
    for group, item in first.items():
        stored: Rubric | None = None
        if item.question_id:
            try:
                stored = grader.rubric(item.question_id)  # type: ignore[attr-defined]
            except InputError:
                stored = None
        if stored is not None and _norm(stored.question) == _norm(item.question):
            rubrics[group] = stored
            sources[group] = "stored"
        else:
            rubrics[group] = build_rubric(item.to_question())
            sources[group] = "built from the eval row (deterministic)"
    return rubrics, sources


def _on_scale(value: float | None, from_max: float | None, to_max: float) -> float | None:
    if value is None:
        return None
    if from_max and from_max != to_max:
        return value * to_max / from_max
    return value


def _flagged(answer: str) -> bool:
    """Whether the injection detector (the same one the pipeline warns with) flags this answer."""
    from grader.judge.injection import kinds

    return bool(kinds(answer))


def _judge_open(result: GradeResult) -> float | None:
    if result.judge is None or result.judge.status != "scored":
        return None
    if "open" in result.combination:
        return result.combination["open"]
    from grader.pipeline.combine import CLEAR_VERDICTS

    clear = {v.id for v in result.judge.verdicts if v.verdict in CLEAR_VERDICTS}
    return float(sum(c.weight for c in result.criteria if c.id not in clear)) if result.criteria else 1.0


def outcome(index: int, item: EvalItem, result: GradeResult) -> ItemOutcome:
    scale = item.max_score
    emb = result.embedding
    jr = result.judge
    judge_score = jr.score if jr is not None and jr.status == "scored" else None
    return ItemOutcome(
        index=index,
        question_id=item.group,
        answer_id=item.answer_id,
        answer_kind=item.answer_kind,
        human=item.score,
        human_a=item.human_a,
        human_b=item.score_b,
        combined=_on_scale(result.score, result.max_score, scale),
        embedding=_on_scale(emb.score, emb.max_score, scale) if emb is not None else None,
        judge=_on_scale(judge_score, jr.max_score if jr is not None else None, scale),
        status=result.status,
        judge_error=jr.error if jr is not None else None,
        judge_cached=jr.cached if jr is not None else None,
        flagged=_flagged(item.answer),
        signals=dict(emb.signals) if emb is not None else {},
        judge_open=_judge_open(result),
        judge_spread=_on_scale(jr.spread, jr.max_score, scale) if jr is not None else None,
        confidence=result.confidence,
        review=[r.code for r in result.review],
        review_facts=[r.code for r in result.review if r.code in FACT_CODES],
    )


def run(
    dataset: Dataset,
    settings: Settings,
    label: str = "default",
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Grade every answer of the set with these settings."""
    from grader.pipeline.grader import Grader, check_answer

    t0 = time.perf_counter()
    grader = Grader(settings)
    rubrics, sources = resolve_rubrics(dataset, grader)
    grader.use_bank(list(rubrics.values()))
    pairs: list[tuple[Rubric, str]] = []
    kept: list[tuple[int, EvalItem]] = []
    skipped: list[str] = []
    for i, item in enumerate(dataset.items):
        try:
            answer = check_answer(item.answer, grader.max_answer_chars)
        except InputError as e:
            skipped.append(f"item {i + 1} ({item.answer_id or item.group}): {e.message}")
            continue
        pairs.append((rubrics[item.group], answer))
        kept.append((i, item))

    done = 0

    def tick(_i: int, _r: GradeResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(pairs))

    results = asyncio.run(grader.agrade_many(pairs, on_result=tick))
    items = [outcome(i, item, r) for (i, item), r in zip(kept, results, strict=True)]
    first = next((r for r in results if r.embedding is not None), None)
    judge_line = grader.describe_judge()
    return RunResult(
        label=label,
        config_path=str(config_path) if config_path else None,
        judge=judge_line,
        prompt=settings.judge.prompt if grader.judge is not None else None,
        weights={"embedding": settings.combine.embedding_weight, "judge": settings.combine.judge_weight,
                 "band": settings.combine.band},
        calibration=first.embedding.calibration if first is not None and first.embedding is not None else None,
        calibration_path=str(settings.calibration) if settings.calibration else None,
        items=items,
        skipped=skipped,
        rubric_sources=sources,
        elapsed_s=round(time.perf_counter() - t0, 3),
    )


def stderr_progress(label: str) -> Progress:
    """Progress on stderr every 10% (judge runs are slow; offline runs finish before anyone looks)."""
    last = -1

    def report(done: int, total: int) -> None:
        nonlocal last
        step = (10 * done) // max(total, 1)
        if step != last:
            last = step
            print(f"[{label}] graded {done}/{total}", file=sys.stderr, flush=True)

    return report


def cross_validated(
    result: RunResult, settings: Settings, max_score: float, folds: int | None = None, review_share: float | None = None
) -> RunResult:
    """The same configuration with its calibration and confidence model refitted without each held-out question.

    Scoring a set with a calibration fitted on that set is in-sample; this run is the honest counterpart: each
    answer's embedding score comes from a calibration that never saw its question, then it is combined with the
    (unfitted) judge score exactly as the configuration's weights say; its confidence and review reasons come
    from a confidence model fitted on the other questions' out-of-fold errors (grader/evaluation/selective.py).
    """
    from grader.embedding.calibration import Calibration, default_calibration_path
    from grader.evaluation.selective import cv_selective
    from grader.evaluation.tune import TuneInputs, Tuner
    from grader.pipeline.confidence import load_model

    scored = [it for it in result.items if it.combined is not None and it.signals]
    if len({it.question_id for it in scored}) < 3:
        raise InputError("--cv needs graded answers to at least three questions")
    judge_used = result.prompt is not None
    inputs = TuneInputs(
        signals=[it.signals for it in scored],
        human=[it.human for it in scored],
        groups=[it.question_id for it in scored],
        max_score=max_score,
        judge={result.prompt: [it.judge for it in scored]} if judge_used and result.prompt else {},
        judge_open={result.prompt: [it.judge_open for it in scored]} if judge_used and result.prompt else {},
    )
    base = Calibration.load(settings.calibration or default_calibration_path())
    tuner = Tuner(
        inputs,
        base,
        base_prompt=result.prompt if judge_used else None,
        base_weights=(settings.combine.embedding_weight, settings.combine.judge_weight),
        base_band=settings.combine.band,
        folds=folds,
        feature_sets=[],
        alphas=(),
    )
    if review_share is None:
        cm = settings.confidence.model
        review_share = load_model(str(cm) if cm is not None else None).review_share
    cv = cv_selective(tuner, tuner.base, scored, review_share, settings=settings.confidence)
    items = [
        it.model_copy(update={"embedding": e, "combined": c, "confidence": conf, "review": codes})
        for it, e, c, conf, codes in zip(scored, cv.embedding, cv.combined, cv.confidence, cv.review, strict=True)
    ]
    return result.model_copy(update={"label": f"{result.label} (CV)", "items": items, "cross_validated": True})
