"""Word-level helpers shared by the rubric builders and their tests: tokens, content words, stems.

Deliberately small and dependency-free: the builder must be deterministic and fast, and the
same notion of "content word" is used to weight points and to check that no idea was lost.
"""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """A word list written as one string, for readable vocabularies."""
    return text.split()

# Function words plus the vague verbs/adverbs that carry no gradable content on their own.
STOPWORDS = frozenset(
    words("""
    a about above after again against all also although am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each either etc even
    every few for from further had has have having he her here hers him his how however i if in into is
    it its itself just least less let like lot lots made make makes making many may me might more most
    much must my neither no nor not now of off often on once one only or other others otherwise our ours
    out over own per perhaps quite rather same several she should since so some such than that the their
    theirs them themselves then there therefore these they this those though through thus to too under
    until up upon us use used uses using very via was we well were what whatever when where whereas
    whether which while who whom whose why will with within without would yet you your yours e.g i.e eg ie
    vs versus include includes including involve involves involving way ways various certain particular
    specific allow allows allowing help helps helping thing things something generally typically usually
    """)
)

# Words that only frame an answer ("the benefits of X include", "some best practices are").
FRAMING_WORDS = frozenset(
    words("""
    benefit benefits advantage advantages technique techniques method methods approach approaches step steps
    following follows practice practices best key main important example examples process done handled
    """)
)

TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#'\-]*[A-Za-z0-9+#]|[A-Za-z0-9]")


def tokens(text: str) -> list[str]:
    """Words as written, keeping hyphenated terms ('8-bit', 'left-to-right') and 'C++' whole."""
    out = []
    for t in TOKEN_RE.findall(text):
        if t.lower().endswith("'s"):
            t = t[:-2]
        out.append(t)
    return out


def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'handling'/'handle', 'models'/'model', 'reduces'/'reduced'."""
    w = word.lower()
    if len(w) <= 3 or not w.isalpha():
        return w
    for suffix, repl in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("isation", "ize"),
        ("ements", "e"),
        ("ement", "e"),
        ("iness", "y"),
        ("ities", "ity"),
        ("ies", "y"),
        ("ing", ""),
        ("ed", ""),
        ("es", ""),
        ("ly", ""),
        ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: len(w) - len(suffix)] + repl
            break
    # 'handl' (handling) and 'handle' should meet: drop a trailing 'e' after stripping.
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def is_content(word: str) -> bool:
    w = word.lower()
    if w in STOPWORDS:
        return False
    return len(w) > 1 or w.isdigit()


def content_words(text: str) -> list[str]:
    """Content words in order of appearance (duplicates kept)."""
    return [t for t in tokens(text) if is_content(t)]


def content_stems(text: str) -> set[str]:
    return {stem(t) for t in content_words(text)}


FRAMING_STEMS = frozenset(stem(w) for w in FRAMING_WORDS)
