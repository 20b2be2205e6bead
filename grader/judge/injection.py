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

# Text that talks to whoever grades, or asks for a mark: a sentence with both is an attempt to steer, not content.
_ADDRESSEE = re.compile(
    r"\b(graders?|grading|evaluators?|examiners?|markers?|assessors?|rubric|answer key|interview panel|hiring manager"
    r"|recruiter|instructor|evaluation (harness|system|pipeline)|automated (grader|system|marker)|ai (grader|model|language model)"
    r"|language model (reading|grading)|if you(?:'re| are) an ai|whoever (is|are) (marking|grading|reading)"
    r"|whatever is marking|system (administrator|override|note)|score field)\b"
    r"|^\s*(assistant|grader|system|evaluator)\s*[,:]|\[\[?\s*(assistant|grader|system)\b",
    _FLAGS,
)
_REQUEST = re.compile(
    r"\b(score[sd]?|scoring|grade[sd]?|grading|marks?|marked|instructions?|points?|full|maximum|highest|perfect|pre-?approved|pre-?verified"
    r"|verified|exemplary|override|record|output|respond|award|correct|benefit of the doubt)\b"
    r"|\b(10|[0-5])\s*/\s*(5|10)\b",
    _FLAGS,
)
_PLEA = re.compile(
    r"\b(please|pls|plz)\b[^.\n]{0,40}\b(give|mark|grade|award|score|pass)\b"
    r"|\b(10|[0-5])\s*/\s*(5|10)\b[^.\n]{0,30}\b(would|please|pls|mean)\b"
    r"|\bbenefit of the doubt\b|\b(my|the) scholarship\b"
    r"|\{[^{}]{0,200}\"(score|grade|verdict|rubric_override|expected_score|max_score)\"\s*:[^{}]{0,200}\}"
    r"|<!--.*?-->",
    _FLAGS | re.DOTALL,
)
_SEGMENT = re.compile(
    r"\s*(?:<!--.*?-->|```.*?```|\[[^\]\n]*\]\]?|\([^)\n]*\))|[^.!?\n\[(<]+[.!?]*|<", re.DOTALL
)


def _steers(segment: str) -> bool:
    if any(p.search(segment) for _, p in _PATTERNS):
        return True
    if _PLEA.search(segment):
        return True
    return bool(_ADDRESSEE.search(segment) and _REQUEST.search(segment))


def manipulation_spans(answer: str) -> list[tuple[int, int]]:
    """Character spans of the sentences, brackets, comments and code blocks that address the grader."""
    return [(m.start(), m.end()) for m in _SEGMENT.finditer(answer) if m.group(0).strip() and _steers(m.group(0))]


def without_manipulation(answer: str) -> str:
    """The answer with every part that addresses the grader cut out (what is left is graded as content)."""
    spans = manipulation_spans(answer)
    if not spans:
        return answer
    out, pos = [], 0
    for s, e in spans:
        out.append(answer[pos:s])
        pos = e
    out.append(answer[pos:])
    return " ".join("".join(out).split())


_LABELS = {
    "ignore-instructions": "tells the grader to ignore its instructions",
    "fake-score": "claims or requests a score",
    "fake-role-turn": "imitates a system/assistant turn",
    "closing-delimiter": "tries to close or open a prompt block",
    "addresses-grader": "addresses the grader or asks for a mark",
}


def suspicious(answer: str) -> list[str]:
    """One warning per kind of manipulation found, quoting the first match (shortened)."""
    out: list[str] = []
    for kind, pattern in _PATTERNS:
        m = pattern.search(answer)
        if m:
            quoted = " ".join(m.group(0).split())[:60]
            out.append(f"possible prompt injection ({kind}): answer {_LABELS[kind]}: {quoted!r}; graded as data")
    if not out:
        spans = manipulation_spans(answer)
        if spans:
            s, e = spans[0]
            quoted = " ".join(answer[s:e].split())[:60]
            out.append(f"possible prompt injection (addresses-grader): answer {_LABELS['addresses-grader']}: "
                       f"{quoted!r}; not graded as content")
    return out


def kinds(answer: str) -> list[str]:
    """Just the kinds flagged, e.g. ['fake-score'] (for tests and counting)."""
    found = [k for k, p in _PATTERNS if p.search(answer)]
    if not found and manipulation_spans(answer):
        found.append("addresses-grader")
    return found
