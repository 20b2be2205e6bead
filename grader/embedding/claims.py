"""Is an answer made of statements? Word-class order and function words. Pure, no model.

A list of the right keywords ("pruning weights smaller model inference speed") or the reference's words
shuffled touches every key point an embedding can see, yet states nothing. Two cheap signals tell them
from sentences:

- ``function_ratio``: the share of words that are function words (articles, prepositions, auxiliaries,
  pronouns, conjunctions). English prose runs at 35-55 %; keyword lists at 0-10 %.
- ``fluency``: how English the *order* of word classes is. Each word is mapped to a coarse class (DET,
  PREP, AUX, PRON, CONJ, NEG, ADV, NUM, and content words by suffix), and the answer's class bigrams are
  scored by pointwise mutual information under a bigram model of real prose (``grader/data/word_classes.json``,
  fitted by ``python -m grader.embedding.claims --fit`` on reference answers and student answers: text only,
  never grades). Shuffled words score near or below 0; prose well above.
- ``claim_share``: the share of the answer's words that sit in clauses with a verb cue (an auxiliary, a
  modal, or a verb-shaped content word after a subject-like word) and some function words: claims rather
  than labels.
- ``list_share``: the share of the answer's words that are bare items of an enumeration (four or more items of
  one to three words, none with a verb, pronoun, preposition or negation: "the decision boundary, the joint
  probability, sampling, digits"). A keyword list dressed in a sentence ("when discussing X one has to consider
  A, B, C, D and E") has function words and a verb in its frame, but its words are still mostly bare items.
- ``listed_claims``: the share of the answer's words in list items that state something: a verb form followed by
  an object ("removes less important weights"), a change ("faster inference", "smaller model"), or a verb phrase
  ("keeps the accuracy"). List items are bullet lines (starting with -, *, • or a number) or, without bullets,
  the items of an enumeration of four or more ("Pruning: removes weights, reduces size, ..."). Such an answer is
  written telegraphically (items of six words at most), without the function words of prose, yet is no keyword
  list ("- model size - inference speed - sparsity" names topics and states nothing).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path

from grader.embedding.polarity import carries_direction
from grader.paths import PACKAGE_DIR

_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?|\d+(?:\.\d+)?|[,;:()]")
_CLAUSE_END = re.compile(r"[.!?;:\n]+")

_CLASSES: dict[str, frozenset[str]] = {
    "DET": frozenset("a an the this that these those each every some any its their our my your his her".split()),
    "PREP": frozenset(
        """of in on at by for with from to into onto over under between through about without within during after
        before via than as per across against among along around behind beyond toward towards upon like""".split()
    ),
    "AUX": frozenset(
        """is are was were be been being am has have had do does did can could will would should may might must
        shall isn't aren't wasn't weren't doesn't don't didn't can't won't cannot""".split()
    ),
    "PRON": frozenset("it they we you he she i them us him me itself themselves which who whom whose what one".split()),
    "CONJ": frozenset("and or but nor so because while whereas although though if when since unless then yet".split()),
    "NEG": frozenset("not no never".split()),
    "ADV": frozenset(
        "very also just only more most less least too quite rather even still often always usually much well".split()
    ),
}
_WORD_CLASS = {w: c for c, ws in _CLASSES.items() for w in ws}
FUNCTION_CLASSES = frozenset({"DET", "PREP", "AUX", "PRON", "CONJ", "NEG"})
CLASS_NAMES = ("BOS", "DET", "PREP", "AUX", "PRON", "CONJ", "NEG", "ADV", "NUM", "PUNCT", "ING", "ED", "S", "LY",
               "W", "EOS")
_MODEL_PATH = PACKAGE_DIR / "data" / "word_classes.json"


@lru_cache(maxsize=65_536)  # a few hundred thousand calls per thousand answers, over a small vocabulary
def word_class(token: str) -> str:
    t = token.lower()
    if t in _WORD_CLASS:
        return _WORD_CLASS[t]
    if t in ",;:()":
        return "PUNCT"
    if t[0].isdigit():
        return "NUM"
    if len(t) > 4 and t.endswith("ing"):
        return "ING"
    if len(t) > 3 and t.endswith("ed"):
        return "ED"
    if len(t) > 3 and t.endswith("ly"):
        return "LY"
    if len(t) > 3 and t.endswith("s") and not t.endswith("ss"):
        return "S"
    return "W"


def class_sequences(text: str) -> list[list[str]]:
    """One class sequence per sentence, with BOS/EOS markers."""
    out = []
    for part in _CLAUSE_END.split(text):
        toks = _TOKEN.findall(part)
        if toks:
            out.append(["BOS", *(word_class(t) for t in toks), "EOS"])
    return out


@cache
def _model() -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    data = json.loads(_MODEL_PATH.read_text(encoding="utf-8"))
    pmi = {(a, b): v for a, row in data["pmi"].items() for b, v in row.items()}
    return pmi, data["floor"]


def fluency(text: str) -> float:
    """Mean pointwise mutual information of the answer's word-class bigrams under the prose model."""
    pmi, floor = _model()
    total, n = 0.0, 0
    for seq in class_sequences(text):
        for a, b in itertools.pairwise(seq):
            total += pmi.get((a, b), floor["pmi"])
            n += 1
    return total / n if n else 0.0


def function_ratio(text: str) -> float:
    toks = [t for t in _TOKEN.findall(text) if t not in ",;:()"]
    if not toks:
        return 0.0
    return sum(1 for t in toks if word_class(t) in FUNCTION_CLASSES) / len(toks)


_SUBJECTISH = frozenset({"W", "S", "PRON", "ING", "ED"})
_VERBISH = frozenset({"S", "ED"})


def claim_share(text: str) -> float:
    """Share of words in clauses that read as statements: a verb cue and at least one function word."""
    total = in_claims = 0
    for part in _CLAUSE_END.split(text):
        toks = [t for t in _TOKEN.findall(part) if t not in ",;:()"]
        if not toks:
            continue
        classes = [word_class(t) for t in toks]
        total += len(toks)
        has_fn = sum(1 for c in classes if c in FUNCTION_CLASSES) >= max(1, len(toks) // 8)
        verb = "AUX" in classes or any(
            c in _VERBISH and i > 0 and classes[i - 1] in _SUBJECTISH for i, c in enumerate(classes)
        )
        if has_fn and verb and len(toks) >= 3:
            in_claims += len(toks)
    return in_claims / total if total else 0.0


_SENTENCE_END = re.compile(r"[.!?\n]+(?=\s|$)")
_ITEM_SEP = re.compile(r"\s*(?:[,;/|•·]|\s[-–—]\s|\band\b|\bor\b)\s*")
_PARENS = re.compile(r"\([^()]*\)")
_NOT_BARE = frozenset({"AUX", "PRON", "NEG", "PREP", "CONJ"})
LIST_MIN_ITEMS = 4
LIST_ITEM_MAX_WORDS = 3
CLAIM_ITEM_MAX_WORDS = 6


def states_something(tokens: list[str]) -> bool:
    """Whether a short item (a bullet, an enumeration item) states a claim rather than names a term: a verb form
    followed by an object ("removes weights"), a change ("faster inference"), or a verb phrase ("remove the
    weights", "is smaller"). Suffix classes alone cannot tell "removes" from "weights"; the verb is read from its
    place (first, with an object after it), comparatives from the direction lexicon of polarity.py."""
    words = [t for t in tokens if t not in ",;:()" and not t[0].isdigit()]
    if len(words) < 2:
        return False
    classes = [word_class(t) for t in words]
    if any(c in ("AUX", "NEG", "PRON") for c in classes) or "DET" in classes[1:]:
        return True
    if classes[0] == "S":
        return True  # "removes weights": a verb with its object (a plural noun rarely opens a term)
    # A comparative of a direction word: "faster inference", "smaller model". A bare form ("remove weights") is left
    # out: it cannot be told from an adjective that opens a term ("random forest", "large dataset": holdout.jsonl).
    return any(w.lower().endswith("er") and carries_direction(w) for w in words)


def _enumeration(part: str) -> list[str]:
    """The items of an enumeration. Formulas and asides ("P(x,y)", "(e.g. SMOTE)") hold separators that do not
    separate items."""
    return [x for x in _ITEM_SEP.split(_PARENS.sub(" ", part)) if x and x.strip()]


_BULLET_MARK = r"^\s*(?:[-*•·–]|\d{1,2}[.)])\s+"
_BULLET = re.compile(_BULLET_MARK + r"(?P<item>.*\S)", re.MULTILINE)


def listed_claims(text: str) -> float:
    """Share of the answer's words in list items that state something (see the module doc): bullet items when there
    are two or more, else the items of enumerations of four or more ("Pruning: removes weights, reduces size, ...",
    read after the colon); 0 without a list."""
    total = sum(1 for t in _TOKEN.findall(re.sub(_BULLET_MARK, " ", text, flags=re.MULTILINE)) if t not in ",;:()")
    items = [m.group("item") for m in _BULLET.finditer(text)]
    if len(items) < 2:
        items = []
        for sentence in _SENTENCE_END.split(text):
            listed = _enumeration(sentence.rsplit(":", 1)[-1])
            if len(listed) >= LIST_MIN_ITEMS:
                items.extend(listed)
    if not items or not total:
        return 0.0
    sizes = [(sum(1 for t in toks if t not in ",;:()"), toks) for toks in (_TOKEN.findall(x) for x in items)]
    # A long item is a sentence (or the frame of a list: "regarding pruning there are concepts such as weights"),
    # which the prose tests read; telegraphic items are short.
    return sum(n for n, toks in sizes if n <= CLAIM_ITEM_MAX_WORDS and states_something(toks)) / total


def list_share(text: str) -> float:
    """Share of the words that are bare items of enumerations (see the module doc)."""
    bare_words = total = 0
    for sentence in _SENTENCE_END.split(text):
        total += sum(1 for t in _TOKEN.findall(sentence) if t not in ",;:()")
        items = _enumeration(sentence)
        if len(items) < LIST_MIN_ITEMS:
            continue
        sizes = []
        for item in items:
            tokens = _TOKEN.findall(item)
            if states_something(tokens):
                sizes.append(0)
                continue
            classes = [word_class(t) for t in tokens if t not in ",;:()"]
            # A determiner inside the item makes it a verb phrase ("oversample the minority class"), an action
            # stated; numbers are values ("1, 2, 3, 4"), not terms.
            verb_phrase = "DET" in classes[1:]
            words = [c for c in classes if c not in ("DET", "NUM")]
            bare = (1 <= len(words) <= LIST_ITEM_MAX_WORDS and not verb_phrase
                    and not any(c in _NOT_BARE for c in words))
            sizes.append(len(words) if bare else 0)
        if sum(1 for k in sizes if k) >= LIST_MIN_ITEMS:
            bare_words += sum(sizes)
    return bare_words / total if total else 0.0


def statement_signals(text: str) -> dict[str, float]:
    return {"fluency": fluency(text), "function_ratio": function_ratio(text), "claim_share": claim_share(text),
            "list_share": list_share(text), "listed_claims": listed_claims(text)}


# -- fitting the prose model (a dev-time command; the result ships as grader/data/word_classes.json) ---------


def fit(texts: list[str]) -> dict:
    pairs: Counter[tuple[str, str]] = Counter()
    singles: Counter[str] = Counter()
    for t in texts:
        for seq in class_sequences(t):
            for a, b in itertools.pairwise(seq):
                pairs[(a, b)] += 1
                singles[b] += 1
    n = sum(pairs.values())
    firsts: Counter[str] = Counter()
    for (a, _), k in pairs.items():
        firsts[a] += k
    k_classes = len(CLASS_NAMES)
    pmi: dict[str, dict[str, float]] = {}
    for a in CLASS_NAMES:
        for b in CLASS_NAMES:
            # Add-one smoothing: an unseen bigram is unlikely, not impossible.
            p_ab = (pairs[(a, b)] + 1) / (firsts[a] + k_classes)
            p_b = (singles[b] + 1) / (n + k_classes)
            pmi.setdefault(a, {})[b] = round(math.log(p_ab / p_b), 4)
    return {"about": "Word-class bigram PMI of prose (grader/embedding/claims.py); text only, no grades.",
            "n_bigrams": n, "n_texts": len(texts), "floor": {"pmi": -3.0}, "pmi": pmi}


def main(argv: list[str] | None = None) -> int:
    """python -m grader.embedding.claims --fit FILE.jsonl [FILE ...]: refit the prose model from answer texts."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "--fit" or len(args) < 2:
        print("usage: python -m grader.embedding.claims --fit FILE.jsonl [FILE.jsonl ...]", file=sys.stderr)
        return 2
    texts: list[str] = []
    for f in args[1:]:
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts.extend(str(row[k]) for k in ("answer", "reference_answer", "question") if row.get(k))
    texts = list(dict.fromkeys(texts))
    model = fit(texts)
    _MODEL_PATH.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {_MODEL_PATH} from {len(texts)} texts, {model['n_bigrams']} bigrams")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
