"""The LLM-assisted rubric builder: the judge endpoint writes the key points, we validate them.

The model's reply is data to check, not to trust: every point must have text, a positive weight
and string keywords, or the whole reply is rejected (LLMRubricError) and the caller falls back to
the deterministic builder, saying so.
"""

from __future__ import annotations

from typing import Any

from grader.config import JudgeSettings
from grader.errors import GraderError
from grader.models import CreditLevels, Criterion, Question
from grader.rubric.deterministic import credit_levels, normalise_weights

PROMPT_ID = "rubric/v2"
MAX_CRITERIA = 12
MAX_SYNONYMS = 3

# Tight bounds on purpose: llama.cpp turns the schema into a grammar, so even a small local model can only
# produce a bounded, well-formed reply; weights are an importance scale the grammar can enforce (enum).
CRITERIA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "criteria": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CRITERIA,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 8, "maxLength": 240},
                    "weight": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                    "keywords": {
                        "type": "array",
                        "maxItems": 5,
                        "items": {"type": "string", "minLength": 1, "maxLength": 40},
                    },
                    # Accepted phrasings of the point: the offline scorer matches a point by the closest of them.
                    "synonyms": {
                        "type": "array",
                        "maxItems": MAX_SYNONYMS,
                        "items": {"type": "string", "minLength": 8, "maxLength": 240},
                    },
                },
                "required": ["text", "weight", "keywords", "synonyms"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["criteria"],
    "additionalProperties": False,
}


class LLMRubricError(GraderError):
    """The endpoint's reply could not be turned into criteria."""


def _str_or_none(item: dict[str, Any], key: str, n: int) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise LLMRubricError(f"criteria[{n}].{key}: expected a string, got {type(value).__name__}")
    return value.strip() or None


def criteria_from_reply(data: Any) -> list[Criterion]:
    """Validate the model's JSON into Criterion objects (origin 'llm', weights normalised, fingerprinted)."""
    if not isinstance(data, dict) or not isinstance(data.get("criteria"), list):
        raise LLMRubricError("reply has no 'criteria' list")
    items = data["criteria"]
    if not items:
        raise LLMRubricError("reply has an empty 'criteria' list")
    if len(items) > MAX_CRITERIA:
        raise LLMRubricError(f"reply has {len(items)} criteria (at most {MAX_CRITERIA})")
    texts, raw_weights, keywords, synonyms, levels = [], [], [], [], []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise LLMRubricError(f"criteria[{n}]: expected an object")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise LLMRubricError(f"criteria[{n}].text: missing or empty")
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise LLMRubricError(f"criteria[{n}].weight: expected a positive number, got {weight!r}")
        kws = item.get("keywords", [])
        if not isinstance(kws, list) or not all(isinstance(k, str) for k in kws):
            raise LLMRubricError(f"criteria[{n}].keywords: expected a list of strings")
        alts = item.get("synonyms", [])
        if not isinstance(alts, list) or not all(isinstance(a, str) for a in alts):
            raise LLMRubricError(f"criteria[{n}].synonyms: expected a list of strings")
        full, partial, none = (_str_or_none(item, k, n) for k in ("full", "partial", "none"))
        text = " ".join(text.split())
        # A phrasing that only repeats the point (or another phrasing) adds nothing; blanks are dropped.
        kept_alts = [a for a in dict.fromkeys(" ".join(a.split()) for a in alts) if a and a != text]
        synonyms.append(kept_alts[:MAX_SYNONYMS])
        texts.append(text)
        raw_weights.append(float(weight))
        kept = [k.strip() for k in kws if k.strip()][:8]
        keywords.append(kept)
        if full or partial or none:
            levels.append(CreditLevels(full=full, partial=partial, none=none))
        else:
            levels.append(credit_levels(kept))
    weights = normalise_weights(raw_weights)
    out = []
    rows = zip(texts, weights, keywords, synonyms, levels, strict=True)
    for n, (text, weight, kws, alts, lv) in enumerate(rows, start=1):
        c = Criterion(id=f"c{n}", text=text, weight=weight, keywords=kws, synonyms=alts, levels=lv, origin="llm")
        out.append(c.model_copy(update={"fingerprint": c.content_hash()}))
    return out


def _check_reply(data: dict[str, Any]) -> list[Criterion]:
    """Reject a reply inside the structured-output loop, so the endpoint is asked again (boundedly)."""
    try:
        return criteria_from_reply(data)
    except LLMRubricError as e:
        raise ValueError(str(e)) from e


def build_criteria_llm(question: Question, judge: JudgeSettings) -> tuple[list[Criterion], str]:
    """Ask the judge endpoint for the key points. Returns (criteria, builder label); raises on failure."""
    from grader.judge.prompts import load_prompt
    from grader.judge.structured import request_structured

    prompt = load_prompt(PROMPT_ID, judge.prompts_dir)
    messages = prompt.render(question=question.question, reference_answer=question.reference_answer)
    reply = request_structured(judge, messages, CRITERIA_SCHEMA, "rubric_criteria", validate=_check_reply)
    criteria: list[Criterion] = reply.parsed  # what _check_reply made of the accepted reply
    label = f"llm/{prompt.label}" + (f" ({judge.model})" if judge.model else "")
    return criteria, label

