"""Strict parser: a judge reply (text or already-decoded dict) into a validated verdict. Pure.

Strict means: every key point gets exactly one valid verdict, the score is a JSON number from the
allowed set, no unknown keys. Anything else raises VerdictParseError with the reason, so the caller
retries and finally marks the grade "unscored" -- a bad reply is never read as 0 or as full marks.
Leniency is kept to what cannot change a grade: code fences and prose around a single JSON object,
a key point's verdict given as a bare string ("met"), and a missing comment.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import BaseModel

from grader.judge.schema import VERDICTS
from grader.models import CriterionVerdict

TOP_KEYS = {"reasoning", "verdicts", "score", "feedback"}
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class VerdictParseError(ValueError):
    """The reply is not a valid verdict; the message says why (it becomes JudgeResult.error)."""


class ParsedVerdict(BaseModel):
    reasoning: str
    verdicts: list[CriterionVerdict]
    score: float
    feedback: str


def extract_json_object(text: str) -> dict[str, Any]:
    """The one JSON object in `text` (bare, fenced, or with prose around it)."""
    return locate_json_object(text)[0]


def locate_json_object(text: str) -> tuple[dict[str, Any], int, int]:
    """The one JSON object in `text` and where it sits: (object, start, end) with text[start:end] its JSON."""
    if not text or not text.strip():
        raise VerdictParseError("empty reply")
    fenced = _FENCE.match(text)
    offset = fenced.start(1) if fenced else 0
    body = fenced.group(1) if fenced else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value, offset, offset + len(body)
    if value is not None:
        raise VerdictParseError(f"reply is JSON but not an object ({type(value).__name__})")
    candidates = _objects_in(body)
    if not candidates:
        if "{" in body:
            raise VerdictParseError("no complete JSON object in reply (truncated or malformed JSON)")
        raise VerdictParseError("no JSON object in reply")
    if len(candidates) > 1:
        raise VerdictParseError(f"reply holds {len(candidates)} JSON objects; refusing to guess which is the verdict")
    found, start, end = candidates[0]
    return found, offset + start, offset + end


def _objects_in(text: str) -> list[tuple[dict[str, Any], int, int]]:
    """Top-level JSON objects embedded in prose, left to right, not overlapping, with their spans."""
    decoder = json.JSONDecoder()
    found: list[tuple[dict[str, Any], int, int]] = []
    i = text.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict):
            found.append((value, i, end))
        i = text.find("{", end)
    return found


def parse_verdict(
    reply: str | dict[str, Any], criterion_ids: list[str], allowed_scores: list[float]
) -> ParsedVerdict:
    data = extract_json_object(reply) if isinstance(reply, str) else reply
    if not isinstance(data, dict):
        raise VerdictParseError(f"verdict must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - TOP_KEYS
    missing = TOP_KEYS - set(data)
    if missing:
        raise VerdictParseError(f"missing keys {sorted(missing)}" + (f"; unexpected keys {sorted(unknown)}" if unknown else ""))
    if unknown:
        raise VerdictParseError(f"unexpected keys {sorted(unknown)}")

    for key in ("reasoning", "feedback"):
        if not isinstance(data[key], str):
            raise VerdictParseError(f"{key} must be a string, got {type(data[key]).__name__}")

    score = _score(data["score"], allowed_scores)
    verdicts = _verdicts(data["verdicts"], criterion_ids)
    return ParsedVerdict(
        reasoning=data["reasoning"].strip(), verdicts=verdicts, score=score, feedback=data["feedback"].strip()
    )


def _score(value: Any, allowed: list[float]) -> float:
    # bool is an int in Python; `true` must not pass as a score of 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VerdictParseError(f"score must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise VerdictParseError(f"score must be finite, got {value!r}")
    for a in allowed:
        if abs(value - a) < 1e-9:
            return float(a)
    raise VerdictParseError(f"score {value!r} is not one of the allowed scores {allowed}")


def _verdicts(value: Any, criterion_ids: list[str]) -> list[CriterionVerdict]:
    if not isinstance(value, dict):
        raise VerdictParseError(f"verdicts must be an object keyed by key point id, got {type(value).__name__}")
    unknown = set(value) - set(criterion_ids)
    if unknown:
        raise VerdictParseError(f"verdicts for unknown key points {sorted(unknown)}")
    missing = [cid for cid in criterion_ids if cid not in value]
    if missing:
        raise VerdictParseError(f"no verdict for key points {missing}")
    out: list[CriterionVerdict] = []
    for cid in criterion_ids:
        entry = value[cid]
        if isinstance(entry, str):
            verdict, comment = entry, ""
        elif isinstance(entry, dict):
            extra = set(entry) - {"verdict", "comment"}
            if extra:
                raise VerdictParseError(f"verdicts.{cid}: unexpected keys {sorted(extra)}")
            verdict, comment = entry.get("verdict"), entry.get("comment", "")
        else:
            raise VerdictParseError(f"verdicts.{cid} must be an object, got {type(entry).__name__}")
        if verdict not in VERDICTS:
            raise VerdictParseError(f"verdicts.{cid}: verdict {verdict!r} is not one of {VERDICTS}")
        if not isinstance(comment, str):
            raise VerdictParseError(f"verdicts.{cid}: comment must be a string")
        out.append(CriterionVerdict(id=cid, verdict=verdict, comment=comment.strip()))
    return out
