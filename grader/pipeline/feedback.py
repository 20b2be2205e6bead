"""Compose the note to the candidate from the merged per-point results. Pure.

One paragraph: the score, what was right, what was missing or wrong, and one concrete suggestion
aimed at the heaviest point the answer lost credit on.
"""

from __future__ import annotations

from grader.models import CriterionResult, Feedback

_MAX_POINT_CHARS = 160


def _fmt_score(score: float) -> str:
    return f"{score:.1f}"


def _point(text: str) -> str:
    """A key point as a clause inside a sentence: no trailing full stop, bounded length."""
    t = " ".join(text.split()).rstrip(".;: ")
    if len(t) > _MAX_POINT_CHARS:
        t = t[: _MAX_POINT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    first = t.split(" ", 1)[0]
    # Lower-case a sentence-initial capital, but keep names and acronyms (PyTorch, NLP) as written.
    if first == "A" or (first[:1].isupper() and first[1:].isalpha() and first[1:].islower()):
        t = t[:1].lower() + t[1:]
    return t


def _first_sentence(text: str) -> str:
    t = " ".join(text.split())
    for end in (". ", "! ", "? "):
        i = t.find(end)
        if i != -1:
            return t[: i + 1]
    return t


def _suggestion(missing: list[CriterionResult], wrong: list[CriterionResult], judge_feedback: str) -> str:
    if wrong:
        c = max(wrong, key=lambda c: c.weight)
        return f"Re-check this point, which your answer gets wrong: {_point(c.text)}."
    if missing:
        c = max(missing, key=lambda c: c.weight)
        verb = "Develop" if c.status == "partial" else "Add"
        return f"{verb} a sentence that makes this point explicitly: {_point(c.text)}."
    if judge_feedback.strip():
        return _first_sentence(judge_feedback)
    return "Support the points you made with a concrete example or a trade-off to show depth."


def compose_feedback(
    criteria: list[CriterionResult],
    score: float | None,
    max_score: float,
    *,
    judge_feedback: str = "",
    unscored_reason: str | None = None,
) -> Feedback:
    """Feedback lists plus the whole note as prose."""
    right = [c for c in criteria if c.status == "met"]
    partial_or_missed = [c for c in criteria if c.status in ("partial", "missed")]
    wrong = [c for c in criteria if c.status == "contradicted"]

    parts: list[str] = []
    if score is None:
        why = f" ({unscored_reason})" if unscored_reason else ""
        parts.append(f"No score{why}.")
    else:
        parts.append(f"Score {_fmt_score(score)}/{max_score:g}.")
    if right:
        parts.append("You covered: " + "; ".join(_point(c.text) for c in right) + ".")
    elif criteria:
        parts.append("None of the key points came through clearly.")
    if partial_or_missed:
        items = [
            _point(c.text) + (" (only partly)" if c.status == "partial" else "") for c in partial_or_missed
        ]
        parts.append("Missing: " + "; ".join(items) + ".")
    if wrong:
        items = [_point(c.text) + (f" ({_point(c.comment)})" if c.comment else "") for c in wrong]
        parts.append("Wrong: " + "; ".join(items) + ".")
    suggestion = _suggestion(partial_or_missed, wrong, judge_feedback)
    parts.append("Suggestion: " + suggestion)
    return Feedback(
        right=[c.text for c in right],
        missing=[c.text for c in partial_or_missed],
        wrong=[c.text for c in wrong],
        suggestion=suggestion,
        text=" ".join(parts),
    )
