"""Heuristic flags for answers that try to steer the grader. Pure; used for GradeResult.warnings.

These flags never change a score: the defence is structural (escaped, delimited answer; the score is
read only from the judge's structured output). The flags make attempts visible to a human reviewer.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE | re.MULTILINE

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "ignore-instructions",
        re.compile(
            r"\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
            r"[^.\n]{0,30}\b(instructions?|prompts?|rules|rubric|guidelines|directions)\b",
            _FLAGS,
        ),
    ),
    (
        "fake-score",
        re.compile(
            r"(\"score\"\s*:\s*-?\d)"
            r"|(\b(score|grade|mark|marks|rating|points)\s*[:=]\s*\d+(\.\d+)?(\s*/\s*\d+)?)"
            r"|(\b\d+(\.\d+)?\s*/\s*\d+\s*(points|marks)?\b(?=[^\n]{0,40}\b(score|grade|marks?|points)\b))"
            r"|(\b(give|award|assign|grant)\b[^.\n]{0,30}\b(full|maximum|max|perfect|top|highest|5/5|10/10)\b"
            r"[^.\n]{0,15}\b(marks?|score|points|credit|grade)\b)"
            r"|(\b(full|maximum|perfect)\s+(marks|score|credit)\b)"
            r"|(\b(deserves?|earns?|scores?)\s+(a\s+)?\d+(\.\d+)?(\s*/\s*\d+)?\s*(\.|!|$|points\b|marks\b|out of\b))",
            _FLAGS,
        ),
    ),
    (
        "fake-role-turn",
        re.compile(
            r"(^\s*(#+\s*)?(system|assistant|user|grader|judge|examiner|developer)\s*(message|prompt)?\s*:)"
            r"|(<\|im_start\|>|<\|im_end\|>|<\|system\|>|<\|assistant\|>|\[/?INST\]|<<\s*/?SYS\s*>>|<\|eot_id\|>)"
            r"|(\b(new|updated|revised)\s+(system\s+)?instructions?\s*:)"
            r"|(\byou are (now )?(a|an|the) (grader|judge|examiner|assistant)\b)",
            _FLAGS,
        ),
    ),
    (
        "closing-delimiter",
        re.compile(
            # Also as HTML entities or full-width brackets: harmless to the prompt (only ASCII markup
            # could close the block, and it is escaped) but a clear attempt a reviewer should see.
            r"((<|&lt;|\uff1c)\s*/?\s*(candidate_answer|answer|reference(_answer)?|rubric|question|system|instructions?)"
            r"\b[^\n]{0,80}?(>|&gt;|\uff1e))"
            r"|(\b(end of|end)\s+(the\s+)?(candidate('s)?\s+)?answer\b)"
            r"|(^\s*(-{3,}|={3,}|#{3,})\s*(end|begin|system|instructions?)\b)",
            _FLAGS,
        ),
    ),
]

_LABELS = {
    "ignore-instructions": "tells the grader to ignore its instructions",
    "fake-score": "claims or requests a score",
    "fake-role-turn": "imitates a system/assistant turn",
    "closing-delimiter": "tries to close or open a prompt block",
}


def suspicious(answer: str) -> list[str]:
    """One warning per kind of manipulation found, quoting the first match (shortened)."""
    out: list[str] = []
    for kind, pattern in _PATTERNS:
        m = pattern.search(answer)
        if m:
            quoted = " ".join(m.group(0).split())[:60]
            out.append(f"possible prompt injection ({kind}): answer {_LABELS[kind]}: {quoted!r}; graded as data")
    return out


def kinds(answer: str) -> list[str]:
    """Just the kinds flagged, e.g. ['fake-score'] (for tests and counting)."""
    return [k for k, p in _PATTERNS if p.search(answer)]
