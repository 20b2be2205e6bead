"""The verdict's JSON schema, built from the rubric.

Scores and verdicts are enums, never ranges: llama.cpp and other grammar-constrained servers ignore
`minimum`/`maximum` but do enforce `enum`, so an enum keeps every server's score on the scale.
Criterion ids are the verdict object's (required) keys, so a constrained server cannot skip or invent one.
"""

from __future__ import annotations

import copy
from typing import Any

from grader.models import Rubric

VERDICTS = ["met", "partial", "missed", "contradicted"]

# Length caps for grammar-constrained servers: they keep a small model from rambling until max_tokens
# and truncating the JSON. Strict OpenAI json_schema mode does not accept them, so `strict_schema` drops them.
REASONING_MAX_CHARS = 600
COMMENT_MAX_CHARS = 160
FEEDBACK_MAX_CHARS = 400


def score_values(max_score: float) -> list[float]:
    """The scores the judge may give: half steps up to 10, whole numbers up to 100, else 100 even steps."""
    if max_score <= 10 and float(max_score * 2).is_integer():
        steps = int(max_score * 2)
        return [_tidy(i / 2) for i in range(steps + 1)]
    if max_score <= 100 and float(max_score).is_integer():
        return [_tidy(float(i)) for i in range(int(max_score) + 1)]
    return [_tidy(round(max_score * i / 100, 4)) for i in range(101)]


def _tidy(x: float) -> float:
    # JSON and grammars then show 3, not 3.0 (ints are still equal to the float when compared).
    return int(x) if float(x).is_integer() else x


def verdict_schema(rubric: Rubric) -> dict[str, Any]:
    ids = [c.id for c in rubric.criteria]
    per_criterion = {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": VERDICTS},
            "comment": {"type": "string", "maxLength": COMMENT_MAX_CHARS},
        },
        "required": ["verdict", "comment"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": REASONING_MAX_CHARS},
            "verdicts": {
                "type": "object",
                "properties": {cid: copy.deepcopy(per_criterion) for cid in ids},
                "required": ids,
                "additionalProperties": False,
            },
            "score": {"type": "number", "enum": score_values(rubric.max_score)},
            "feedback": {"type": "string", "maxLength": FEEDBACK_MAX_CHARS},
        },
        "required": ["reasoning", "verdicts", "score", "feedback"],
        "additionalProperties": False,
    }


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy fit for OpenAI's strict json_schema mode (no length keywords, which it refuses)."""
    out = copy.deepcopy(schema)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            for k in ("maxLength", "minLength"):
                node.pop(k, None)
            for v in node.values():
                strip(v)
        elif isinstance(node, list):
            for v in node:
                strip(v)

    strip(out)
    return out
