"""Is any idea of the reference lost? Content-word coverage of a reference answer by its key points."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.models import Rubric
from grader.rubric.text import FRAMING_STEMS, content_stems, stem, words

# Words of connectives and list framing the builder drops on purpose ("on the other hand", "First,").
CONNECTIVE_STEMS = frozenset(
    stem(w) for w in words(
        "other hand first firstly second secondly next finally lastly moreover furthermore "
        "additionally contrast overall summary short"
    )
)


_LIST_MARKER = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,2}[.)]|[a-z][.)])\s+", re.MULTILINE)


@dataclass(frozen=True)
class Coverage:
    ratio: float  # share of the reference's own content words found in some key point
    lost: list[str]  # those not found, sorted


def coverage(rubric: Rubric) -> Coverage:
    """Content words of the reference (beyond the question's words and framing) that the key points keep."""
    question = content_stems(rubric.question)
    reference = _LIST_MARKER.sub("", rubric.reference_answer)
    wanted = content_stems(reference) - question - FRAMING_STEMS - CONNECTIVE_STEMS
    have: set[str] = set()
    for c in rubric.criteria:
        have |= content_stems(c.text)
    if not wanted:
        return Coverage(1.0, [])
    lost = sorted(wanted - have)
    return Coverage(1 - len(lost) / len(wanted), lost)
