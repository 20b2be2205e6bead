"""Deterministic feedback from embedding coverage: which key points were made, which were missed."""

from __future__ import annotations

from grader.embedding.scorer import rubric_points
from grader.models import EmbeddingResult, Feedback, Rubric

_MAX_SPAN_CHARS = 120


def _sentence(text: str) -> str:
    t = text.strip()
    return t if t.endswith((".", "!", "?")) else t + "."


def _lower_first(text: str) -> str:
    # Keep acronyms and names ('NLP', 'PyTorch') as written.
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _quote(span: str) -> str:
    s = " ".join(span.split())
    return s if len(s) <= _MAX_SPAN_CHARS else s[: _MAX_SPAN_CHARS - 1].rstrip() + "…"


def coverage_feedback(rubric: Rubric, result: EmbeddingResult) -> Feedback:
    """Plain sentences from per-point coverage: points made (with the words that made them), points missing.

    Pure: the same rubric and result always give the same feedback. Points are listed in rubric order.
    """
    points = {p.id: p for p in rubric_points(rubric)}
    right: list[str] = []
    missing: list[str] = []
    for cov in result.coverage:
        point = points.get(cov.id)
        if point is None:
            continue
        if cov.covered:
            where = f' ("{_quote(cov.best_span)}")' if cov.best_span else ""
            right.append(f"You covered: {_sentence(point.text)[:-1]}{where}.")
        else:
            missing.append(f"Missing: {_sentence(point.text)}")
    suggestion = None
    if missing:
        # The heaviest missing point is the one most worth adding.
        weight = {p.id: p.weight for p in points.values()}
        absent = [c for c in result.coverage if not c.covered and c.id in points]
        top = max(absent, key=lambda c: (weight[c.id], -list(points).index(c.id)))
        suggestion = f"Add that {_lower_first(_sentence(points[top.id].text))}"
    parts = [f"Offline score {result.score:.1f} of {result.max_score:g}."]
    n_made, n_all = len(right), len(result.coverage)
    if n_all:
        parts.append(f"{n_made} of {n_all} key points made.")
    parts.extend(right)
    parts.extend(missing)
    if not result.coverage or (n_made == 0 and result.score == 0):
        parts.append("The answer does not address the question's key points.")
    return Feedback(right=right, missing=missing, wrong=[], suggestion=suggestion, text=" ".join(parts))
