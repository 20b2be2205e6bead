"""Probability-weighted score from the score token's top logprobs. Pure.

Find the token where the JSON "score" value starts, keep the alternatives that are valid scores,
renormalise their probabilities and take the expectation. Grammar-constrained servers (llama.cpp)
report the model's raw distribution, so invalid alternatives are common: renormalising over the valid
ones is what makes the figure meaningful. Only scores whose text is a single token can be read this
way (0-9); a half step such as 3.5 counts as its leading digit, which the note states.
"""

from __future__ import annotations

import math
import re
from typing import Any

from grader.judge.parse import VerdictParseError, locate_json_object

_SCORE_KEY = re.compile(r'"score"\s*:\s*')
NO_LOGPROBS = "endpoint returned no logprobs"


def weighted_score(
    content: list[dict[str, Any]] | None, allowed: list[float]
) -> tuple[float | None, str]:
    """(score, note). The score is None when it cannot be read; the note always says what happened."""
    if not content:
        return None, NO_LOGPROBS
    tokens = [str(t.get("token", "")) for t in content]
    text = "".join(tokens)
    # Only the verdict object counts: prose around it (text mode) may quote an answer's '"score": 5'.
    try:
        _, start, end = locate_json_object(text)
    except VerdictParseError:
        return None, "no score token found in the logprobs"
    matches = list(_SCORE_KEY.finditer(text, start, end))
    if not matches:
        return None, "no score token found in the logprobs"
    # Inside a verdict every string escapes its quotes, so an unescaped "score": is a key; the top-level
    # one comes after "verdicts" (the schema's order), so it is the last.
    offset = matches[-1].end()
    index = _token_at(tokens, offset)
    if index is None:
        return None, "no score token found in the logprobs"
    alternatives = content[index].get("top_logprobs") or []
    if not alternatives:
        return None, "endpoint returned no top_logprobs for the score token"
    digit_scores = {int(a) for a in allowed if float(a).is_integer() and 0 <= a <= 9}
    if max(allowed) > 9:
        return None, "score scale needs multi-token values; probability-weighted score not computed"
    probs: dict[int, float] = {}
    for alt in alternatives:
        tok = str(alt.get("token", "")).strip()
        if tok.isdigit() and int(tok) in digit_scores:
            probs[int(tok)] = probs.get(int(tok), 0.0) + math.exp(float(alt["logprob"]))
    total = sum(probs.values())
    if total <= 0:
        return None, "no valid score among the score token's top logprobs"
    score = sum(v * p for v, p in probs.items()) / total
    note = f"probability-weighted over {len(probs)} valid score tokens (mass {total:.2f} before renormalising)"
    if any(not float(a).is_integer() for a in allowed):
        note += "; half steps count as their leading digit"
    return score, note


def _token_at(tokens: list[str], offset: int) -> int | None:
    """Index of the token covering character `offset`, skipping whitespace-only tokens."""
    pos = 0
    for i, tok in enumerate(tokens):
        end = pos + len(tok)
        if end > offset:
            if tok.strip():
                return i
            offset = end  # whitespace token: the value starts in the next one
        pos = end
    return None
