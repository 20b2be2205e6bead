"""Choosing a builder, and rebuilding a rubric without losing what a person wrote.

Rebuild rule: a criterion a person wrote (origin 'human') or edited (its fingerprint no longer
matches its content) is kept as it is; every other criterion is replaced by the builder's new
output. When the builder produces again the very point a person edited (same fingerprint, or the
same text), the person's version takes its place instead of appearing twice. ``force`` replaces all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.config import JudgeSettings
from grader.errors import InputError
from grader.models import Criterion, Question, Rubric
from grader.rubric.deterministic import BUILDER_NAME, build_criteria

BUILDER_CHOICES: tuple[str, ...] = ("deterministic", "llm", "auto")


@dataclass
class BuildOutcome:
    criteria: list[Criterion]
    builder: str
    notes: list[str] = field(default_factory=list)  # what the user should hear about (fallbacks)


def question_of(rubric: Rubric) -> Question:
    return Question(**rubric.model_dump(include=set(Question.model_fields)))


def check_builder_choice(choice: str) -> None:
    if choice not in BUILDER_CHOICES:
        raise InputError(f"unknown builder {choice!r} (choose {', '.join(BUILDER_CHOICES)})", field="--builder")


def build_for(question: Question, choice: str = "deterministic", judge: JudgeSettings | None = None) -> BuildOutcome:
    """Criteria from the chosen builder; the LLM builder falls back to the deterministic one, noted."""
    check_builder_choice(choice)
    configured = judge is not None and judge.configured
    if choice == "llm" and not configured:
        raise InputError(
            "--builder llm needs a judge endpoint: give --base-url (and --model), or set GRADER_JUDGE__BASE_URL",
            field="--builder",
        )
    if choice == "deterministic" or not configured:
        return BuildOutcome(build_criteria(question.question, question.reference_answer), BUILDER_NAME)
    from grader.rubric.llm import build_criteria_llm

    assert judge is not None
    try:
        criteria, label = build_criteria_llm(question, judge)
        return BuildOutcome(criteria, label)
    except Exception as e:  # any endpoint or reply trouble: the rubric still gets built, visibly
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        note = f"{question.id}: LLM rubric builder failed ({reason}); used the deterministic builder instead"
        return BuildOutcome(build_criteria(question.question, question.reference_answer), BUILDER_NAME, [note])


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


@dataclass
class MergeResult:
    criteria: list[Criterion]
    kept: list[Criterion]
    replaced: int


def merge_criteria(old: list[Criterion], new: list[Criterion], force: bool = False) -> MergeResult:
    """New auto criteria plus the hand-written/edited old ones (all replaced when ``force``)."""
    kept = [] if force else [c for c in old if c.edited_by_hand]
    unplaced = list(kept)
    merged: list[Criterion] = []
    for c in new:
        twin = next(
            (k for k in unplaced if k.fingerprint == c.content_hash() or _same_text(k.text, c.text)), None
        )
        if twin is not None:
            unplaced.remove(twin)
            merged.append(twin)  # the person's version of this very point
        else:
            merged.append(c)
    merged.extend(unplaced)

    # Kept criteria keep their ids (a person may refer to them); new ones are numbered around them.
    taken = {k.id for k in kept}
    is_kept = {id(k) for k in kept}
    out: list[Criterion] = []
    n = 0
    for c in merged:
        if id(c) in is_kept:
            out.append(c)
            continue
        n += 1
        while f"c{n}" in taken:
            n += 1
        new_id = f"c{n}"
        out.append(c if c.id == new_id else c.model_copy(update={"id": new_id}))
    return MergeResult(out, kept, replaced=len(old) - len(kept))


@dataclass
class RebuildOutcome:
    rubric: Rubric
    kept: list[Criterion]
    replaced: int
    notes: list[str]


def rebuild_rubric(
    rubric: Rubric, choice: str = "deterministic", judge: JudgeSettings | None = None, force: bool = False
) -> RebuildOutcome:
    """The rubric with its auto criteria rebuilt from its own (possibly hand-edited) reference answer."""
    outcome = build_for(question_of(rubric), choice, judge)
    merge = merge_criteria(rubric.criteria, outcome.criteria, force)
    new = rubric.model_copy(update={"criteria": merge.criteria, "builder": outcome.builder})
    return RebuildOutcome(Rubric.model_validate(new.model_dump()), merge.kept, merge.replaced, outcome.notes)


def new_rubric(question: Question, choice: str = "deterministic", judge: JudgeSettings | None = None) -> tuple[
    Rubric, list[str]
]:
    outcome = build_for(question, choice, judge)
    rubric = Rubric(**question.model_dump(), criteria=outcome.criteria, builder=outcome.builder)
    return rubric, outcome.notes
