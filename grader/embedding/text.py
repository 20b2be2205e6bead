"""Small, dependency-free text helpers: words, stop words, a light stemmer, sentence spans."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+|(?<=:)\s+(?=[A-Z])")

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either etc few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let may me
    might more most must my myself no nor not now of off on once only or other our ours ourselves out over own
    same shall she should so some such than that the their theirs them themselves then there these they this
    those through thus to too under until up upon us very via was we were what when where whether which while
    who whom whose why will with within without would you your yours yourself yourselves one ones thing things
    something use used using uses e g eg ie i.e""".split()
)

_SUFFIXES = (
    "ational", "ization", "fulness", "iveness", "ousness", "ations", "ation", "ments", "ement", "ingly",
    "ities", "ness", "ment", "ings", "able", "ible", "ally", "ives", "ive", "ies", "ing", "ity", "ers",
    "ed", "er", "es", "ly", "al", "s",
)

_REPLACE = {"ational": "ate", "ations": "ate", "ation": "ate", "ization": "ize"}


@lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """A crude suffix stripper plus truncation: enough to match 'simulates'/'simulation'/'simulate' without NLTK."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 3 or w.isdigit():
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            if suf == "s" and w.endswith(("ss", "us", "is")):
                break
            w = w[: -len(suf)] + _REPLACE.get(suf, "")
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
        w = w[:-1]
    # Truncation to six letters merges the forms the suffix list misses (simulate/simulation).
    return w[:6]


def words(text: str) -> list[str]:
    return [m.group(0).lower() for m in _WORD.finditer(text)]


def word_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (stop words dropped)."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and list items) of ``text``, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and _WORD.search(text, s, e):
            out.append((s, e))
    return out


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]
