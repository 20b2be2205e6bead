"""Does an answer agree with a key point or contradict it? Negation, opposite directions, swapped roles. Pure.

Embedding similarity measures what an answer talks about: "pruning does not reduce the size of a network"
sits as close to "pruning reduces the size of a network" as any paraphrase. This module reads the words
instead. Each text is cut into clauses; each word is marked negated when a negation cue ("not", "never",
"n't", "without", "fails to", "rather than", ...) scopes over it. A key point is then compared with every
clause of the answer that shares its words:

- a word the point states and the answer negates is a conflict (a point that is itself negative, like
  "without affecting performance", is not contradicted by an answer that drops the negation: "with little
  loss of accuracy" is a paraphrase, not a denial);
- a word of an opposite pair ("increase" where the point says "reduce", "slower" for "faster") with the
  same polarity on both sides is a conflict, and with opposite polarity an agreement ("does not add" agrees
  with "removes");
- when the rubric contrasts two roles (generative / discriminative, encoder / decoder), a clause that says
  the point's claim of the other role (and not of the point's own) is a conflict; so is a clause that keeps one
  of the point's role pairs and swaps another ("BERT is the unidirectional one" against "GPT is
  unidirectional": the property given to the other entity);
- a quantifier (more, less, fewer, many, ...) is read with the word it quantifies: "more efficient" and "fewer
  parameters" are no conflict, "fewer parameters" and "more parameters" are; "a few" is not "fewer".

A clause that disowns what came before it ("Everything I just wrote is wrong", "But that is false") takes those
clauses back: their contradictions are no evidence, and a point whose only agreement was taken back is
contradicted.

A denial can follow what it denies: "fine-tuning isn't part of the process", "evaluation is skipped" (not in a
condition: "if a termination test is omitted"). A quantifier is read as the direction of the amount it quantifies
when that amount is what the point's direction word is said of: "more parameters" contradicts "reducing the number
of parameters" (the two directions of an amount are listed in grader/data/opposites.json, "magnitude"). A point
that itself states both directions ("a large dataset ... a smaller one") is not contradicted by a synonym of one of
them ("big").

A point is contradicted when its strongest contradicting clause outweighs its strongest agreeing clause, or when
the contradicting clause is where the encoder aligned the point and the agreeing one is not (the agreement is then
often only the point's nouns said again about something else), or when a clause reverses the point's direction and
no clause states it.
Words that carry direction count twice: the nouns a claim is about ("size", "weights") agree in a negated
answer too, and must not outvote the verb that flips.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, lru_cache
from typing import Literal

from grader.embedding.text import STOP_WORDS, sentence_spans, stem, word_spans
from grader.paths import PACKAGE_DIR

# Verbs of leaving something out: they deny their object ("skip the tokenizer"), and in the passive ("evaluation is
# skipped") what stands before them (_deny_backwards).
_OMISSIONS = frozenset({"skip", "skips", "skipped", "skipping", "omit", "omits", "omitted", "omitting"})
_CUES = frozenset({
    "not", "no", "never", "cannot", "without", "neither", "nor", "none", "nothing", "nowhere", "nobody",
    "hardly", "barely", "unable", "lack", "lacks", "lacking", "instead", "rather",
    # Difficulty reads as a soft denial: "it is challenging to assess quality" says what "there is no good
    # measure of quality" says. Used on both sides, so the two agree.
    "challenging", "difficult", "hard", "impossible",
    # Verbs that deny their object: "avoids making copies" says what "does not make copies" says.
    "avoid", "avoids", "avoiding", "prevent", "prevents", "preventing", "eliminate", "eliminates", "eliminating",
    *_OMISSIONS,
})
# What a denial placed after its subject says of it: "fine-tuning isn't part of the process", "a tokenizer is not
# needed", "evaluation is skipped" deny the words before the cue, since nothing after it is a claim of its own.
_PREDICATE_ONLY = frozenset({
    "part", "process", "needed", "necessary", "required", "used", "involved", "done", "performed", "applied",
    "included", "step", "steps", "carry", "carried", "over", "matter", "matters", "anymore", "really", "all", "at",
    "any", "actually", "even", "here", "there", "of", "the", "a", "an", "is", "are", "was", "were", "be", "been",
    "it", "that", "this", "in", "to", "on", "your", "our", "side", "pipeline", "workflow", "way", "always",
})
# Light words say nothing on their own ("makes a copy" / "instead of making calls"): never evidence.
_LIGHT = frozenset({"make", "makes", "making", "made", "do", "does", "done", "doing", "have", "has", "having", "get",
                    "gets", "getting", "take", "takes", "need", "needs", "needed", "way", "ways", "thing", "things",
                    "lot", "lots", "kind", "type", "types", "able", "going", "put", "give", "gives", "go", "goes"})
_DIMINISHERS = frozenset({"less", "least"})
_NARROW = frozenset({"instead", "rather"})  # "instead of accuracy": the scope is a noun phrase
_FAIL = frozenset({"fail", "fails", "failed", "failing"})
# "not only X but also Y", "not just", "not necessarily": a hedge or an addition, not a denial.
_NOT_A_DENIAL = frozenset({"only", "just", "merely", "necessarily", "always", "all", "much", "matter"})
# Words that end a negation's scope: the next clause has its own subject and polarity.
_SCOPE_BREAK = frozenset({
    "but", "while", "whereas", "although", "though", "however", "yet", "because", "since", "so", "which",
    "who", "whose", "unlike", "except", "than", "also", "then", "therefore", "thus", "hence",
})
_SUBJECT_AFTER_COMMA = frozenset({"it", "they", "this", "these", "that", "which", "we", "he", "she", "and", "so"})
SCOPE_MAX_WORDS = 8
_CLAUSE_SPLIT = re.compile(
    r"[.!?;:]+(?=\s|$)|\n+|,\s*(?=(?:but|while|whereas|although|though|however|yet|which|unlike|instead)\b)"
    r"|\s(?=(?:but|whereas|however|although)\b)"
    r"|,\s*(?=(?:and\s+|or\s+)?(?:do|does|did|don't|doesn't|never|it|they|this|these|we|you)\b)"
    # ", and TensorFlow is ...": a new subject (one or two words) and its verb start a new clause (after a spaced
    # dash too: "GPT is the bidirectional one — it reads both sides — and BERT is the left-to-right model").
    r"|(?:,|\s[—–-]+)\s*(?=(?:and|but|while)\s+(?:the\s+)?[A-Za-z][\w-]*(?:\s+[A-Za-z][\w-]*)?\s+(?:is|are|was|were|has|have|does|can|uses|learns|gives|makes)\b)",
    re.IGNORECASE,
)
_SINGLE_LETTER = re.compile(r"^[a-z0-9]$")
# A clause that takes back everything said before it: "But that is false.", "Everything I just wrote is wrong.",
# "None of this is true.", "Just kidding." Only as a whole clause with its subject first, so that "a label that
# is wrong" or "the model is wrong" is not one.
_RETRACTION = re.compile(
    r"\s*(?:(?:but|and|however|though|yet|well|actually|honestly)[\s,]+)*"
    r"(?:(?P<what>that|this|it|everything|all|all\s+of\s+(?:this|that|it)|the\s+above|all\s+the\s+above|what\s+i\s+"
    r"(?:just\s+)?(?:said|wrote))(?:\s+i\s+(?:just\s+)?(?:said|wrote|told\s+you))?(?:\s+above)?"
    r"(?:\s+(?:is|was|are|were)|['’]s)\s+(?:all\s+|completely\s+|totally\s+|actually\s+)?"
    r"(?:false|wrong|incorrect|untrue|nonsense|a\s+lie|a\s+myth|a\s+misconception|made\s+up"
    r"|not\s+(?:true|correct|right))"
    r"|none\s+of\s+(?:this|that|it|the\s+above|what\s+i\s+(?:just\s+)?(?:said|wrote))\s+(?:is|was)\s+(?:true|correct)"
    r"|(?:i\s+was\s+)?(?:just\s+)?kidding|i\s+was\s+joking|the\s+opposite\s+is\s+true)"
    r"[\s.!?,;:]*$",
    re.IGNORECASE,
)

Stance = Literal["agree", "contradict", "none"]


@dataclass(frozen=True)
class Lexicon:
    opposites: dict[str, frozenset[str]]  # stem -> stems of its opposites
    roles: tuple[tuple[str, str], ...]  # stem pairs of contrasted roles
    words: dict[str, str]  # stem -> a readable word, for cues
    magnitude: dict[str, int] = field(default_factory=dict)  # stem -> +1 (more, larger, ...) or -1 (reduce, fewer, ...)

    def carries_direction(self, s: str) -> bool:
        return s in self.opposites


@cache
def lexicon() -> Lexicon:
    data = json.loads((PACKAGE_DIR / "data" / "opposites.json").read_text(encoding="utf-8"))
    opp: dict[str, set[str]] = {}
    words: dict[str, str] = {}
    for a, b in data["direction"]:
        sa, sb = _stem_phrase(a), _stem_phrase(b)
        words.setdefault(sa, a)
        words.setdefault(sb, b)
        opp.setdefault(sa, set()).add(sb)
        opp.setdefault(sb, set()).add(sa)
    roles = []
    for a, b in data["roles"]:
        sa, sb = _stem_phrase(a), _stem_phrase(b)
        words.setdefault(sa, a)
        words.setdefault(sb, b)
        roles.append((sa, sb))
    magnitude = {_stem_phrase(w): sign for key, sign in (("up", 1), ("down", -1)) for w in data["magnitude"][key]}
    return Lexicon({k: frozenset(v) for k, v in opp.items()}, tuple(roles), words, magnitude)


@lru_cache(maxsize=65_536)
def _stem_phrase(word: str) -> str:
    # Doubled letters collapsed: "labelled" and "labeled", "modelling" and "modeling" are one word here.
    return _DOUBLE.sub(r"\1", stem(word.replace("-", "").lower()))


_DOUBLE = re.compile(r"(\w)\1")

def carries_direction(word: str) -> bool:
    """Whether a word is one side of a direction pair of the lexicon (reduce, faster, remove, ...)."""
    return lexicon().carries_direction(_stem_phrase(word))


# Quantifiers: their direction is about the word after them, so "more efficient" and "fewer parameters" are
# not opposite claims, while "more weights" and "fewer weights" are.
QUANTIFIERS = frozenset(_stem_phrase(w) for w in ("more", "less", "fewer", "most", "least", "many", "few", "much"))


@dataclass(frozen=True)
class Word:
    text: str
    stem: str
    negated: bool
    start: int
    end: int
    content: bool
    lead: bool = False  # stands before the clause's first negation cue: what a denial is about, not what it denies


@dataclass(frozen=True)
class Clause:
    start: int
    end: int
    words: tuple[Word, ...]
    negative: bool = False  # a negation cue stands somewhere in the clause
    # The clause takes back what came before it: "sentence" ("But that is false.": the sentence before it and
    # its own), "all" ("Everything I just wrote is wrong."), or "" (it does not).
    retracts: str = ""
    sentence: int = 0  # index of the sentence the clause starts in
    # Opposite directions offered as alternatives ("either smaller or larger", "increase and/or decrease"): stem
    # pairs. A clause that hedges between the two directions of a point's claim states neither.
    alternatives: tuple[tuple[str, str], ...] = ()
    text: str = ""  # the clause's own text (characters start..end of the answer)

    @cached_property
    def stems(self) -> dict[str, bool]:
        """stem -> negated (negated only when every occurrence in the clause is). Read-only: computed once per
        clause, since every point is weighed against every clause."""
        out: dict[str, bool] = {}
        for w in self.words:
            out[w.stem] = out.get(w.stem, True) and w.negated
        return out

    def after(self, s: str) -> frozenset[str]:
        """Stems of the words right after each occurrence of `s` (what a quantifier like "more" quantifies)."""
        return frozenset(self.words[i + 1].stem for i, w in enumerate(self.words[:-1]) if w.stem == s)

    def leads(self) -> frozenset[str]:
        """Stems that only stand before the first negation cue (the subject of a denial, "prompts" in "prompts
        cannot change the style")."""
        lead = {w.stem for w in self.words if w.lead}
        return frozenset(lead - {w.stem for w in self.words if not w.lead})


def _is_cue(words: list[str], i: int) -> bool:
    w = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if w.endswith(("n't", "n’t")):
        return nxt not in _NOT_A_DENIAL
    if w in _FAIL:
        return nxt == "to"
    if w == "instead":
        return nxt == "of"
    if w == "rather":
        return nxt == "than"
    if w in ("not", "no"):
        return nxt not in _NOT_A_DENIAL
    if w == "hard":
        return nxt == "to"  # "hard to evaluate" is a soft denial; "hard labels", "hard drive" are not
    return w in _CUES


def clause_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _CLAUSE_SPLIT.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(s, e) for s, e in spans if e > s and re.search(r"\w", text[s:e])]


def _retraction(clause: str) -> str:
    m = _RETRACTION.match(clause)
    if not m:
        return ""
    # "that/this/it" points back at the last thing said; "everything", "the above", "just kidding" at all of it.
    return "sentence" if re.match(r"(?:that|this|it)\b", m.group("what") or "", re.IGNORECASE) else "all"


def analyse(text: str) -> list[Clause]:
    """The clauses of a text, each word with its stem and whether a negation scopes over it."""
    lex = lexicon()
    sentences = sentence_spans(text) or [(0, len(text))]
    depends = [bool(_DEPENDS.search(text[a:b])) for a, b in sentences]  # "it depends" makes an "or" a hedge
    out: list[Clause] = []
    for cs, ce in clause_spans(text):
        spans = [(w, s + cs, e + cs) for w, s, e in word_spans(text[cs:ce])]
        raw = [w for w, _, _ in spans]
        negated = [False] * len(raw)
        cues = [_is_cue(raw, i) for i in range(len(raw))]
        i = 0
        while i < len(raw):
            if cues[i] and raw[i] in _PASSIVE_DENIALS and i and raw[i - 1] in _AUXILIARY:
                i += 1  # "the base case is omitted or ...": what is omitted stands before it (_deny_backwards)
                continue
            if cues[i]:
                narrow = raw[i] in _NARROW
                omits = raw[i] in _OMISSIONS
                j = i + (2 if narrow or raw[i] in _FAIL else 1)
                count = 0
                limit = 4 if narrow else SCOPE_MAX_WORDS
                while j < len(raw) and count < limit and raw[j] not in _SCOPE_BREAK:
                    gap = text[spans[j - 1][2] : spans[j][1]]
                    if "," in gap and (narrow or raw[j] in _SUBJECT_AFTER_COMMA):
                        break
                    if "," in gap and raw[j] == "or" and j + 1 < len(raw) and raw[j + 1] in ("a", "an", "the"):
                        break  # "No base case, or an incorrect step": a second thing named, not denied
                    if cues[j]:
                        break
                    if omits and raw[j] in ("or", "and") and j + 1 < len(raw) and raw[j + 1].endswith(("ly", "ing")):
                        break  # "omitting the base case or incorrectly calling ...": a second thing done, not omitted
                    negated[j] = True
                    j += 1
                    count += 1
                i = max(i + 1, j)
                continue
            i += 1
        whole = _WHOLE_DENIAL.match(text[cs:ce])
        if whole:
            # "It is not true that X": the denial covers X to the end of its clause, however long X is.
            for k, (_, s, _) in enumerate(spans):
                if s >= cs + whole.end():
                    negated[k] = True
        first_cue = next((i for i in range(len(raw)) if cues[i]), len(raw))
        negative = first_cue < len(raw)
        # A denial after its subject ("evaluation is skipped") makes the subject what is denied, not the lead of a
        # denial: the lead words are then those before the next cue, if any.
        if _deny_backwards(text, spans, raw, cues, negated) and negative and negated[first_cue - 1]:
            first_cue = next((i for i in range(first_cue + 1, len(raw)) if cues[i] and not negated[i - 1]), len(raw))
        words = []
        for k, ((w, s, e), neg) in enumerate(zip(spans, negated, strict=True)):
            if w in _LIGHT or w in _CUES or w.endswith(("n't", "n’t")):
                continue  # light words say nothing; cues are read as negation, not as words of the claim
            if (w == "few" and k and raw[k - 1] == "a") or w == "up":
                continue  # "a few" is some, not fewer; "up" (set up, speed up) is not "upper", its stem
            st = _stem_phrase(w)
            if k and raw[k - 1] in _DIMINISHERS and st not in QUANTIFIERS and lex.carries_direction(st):
                neg = True  # "less important" says what "unimportant" and "not important" say
            content = not (w in STOP_WORDS or w in _CUES or _SINGLE_LETTER.match(w) or w.endswith("n't"))
            if content or lex.carries_direction(st):
                words.append(Word(w, st, neg, s, e, content, lead=k < first_cue < len(raw)))
        first = cs + len(text[cs:ce]) - len(text[cs:ce].lstrip())  # the clause's first character, not its space
        sentence = sum(1 for st, _ in sentences if st <= first) - 1
        alternatives = _alternatives(raw, sentence >= 0 and first < sentences[sentence][1] and depends[sentence])
        out.append(Clause(cs, ce, tuple(words), negative, _retraction(text[cs:ce]), sentence, alternatives,
                          text[cs:ce]))
    return out


def _deny_backwards(text: str, spans: list[tuple[str, int, int]], raw: list[str], cues: list[bool],
                    negated: list[bool]) -> bool:
    """Marks as negated the subject of a denial that stands after it ("fine-tuning on your dataset isn't part of
    the process", "evaluation is skipped"): a cue followed, up to the next comma, by nothing that is a claim of
    its own. Not in a condition ("if a termination test is omitted" says nothing against having one). Whether
    any word was marked."""
    marked = False
    for i in range(1, len(raw)):
        if not cues[i] or not _denies_its_subject(raw, i):
            continue
        j = i + 1
        while j < len(raw) and "," not in text[spans[j - 1][2] : spans[j][1]] and raw[j] not in _SCOPE_BREAK:
            if not (raw[j] in _PREDICATE_ONLY or raw[j] in _LIGHT):
                break
            j += 1
        else:
            subject: list[int] = []
            start = i - 1
            while start >= 0 and raw[start] in _AUXILIARY:
                start -= 1
            for k in range(start, max(-1, start - SUBJECT_MAX_WORDS), -1):
                if raw[k] in _HYPOTHETICAL:
                    subject = []
                    break
                if raw[k] in _SCOPE_BREAK or raw[k] in _AUXILIARY or raw[k] in _RELATIVE \
                        or "," in text[spans[k][2] : spans[k + 1][1]]:
                    break
                subject.append(k)
            for k in subject:
                negated[k] = True
            marked = marked or bool(subject)
    return marked


_WHOLE_DENIAL = re.compile(
    r"\s*(?:(?:but|and|so|well|no)[\s,]+)?(?:it\s+is|it['’]s|it\s+was|that\s+is|that['’]s)\s+"
    r"(?:not\s+true|not\s+the\s+case|untrue|false|a\s+myth|wrong\s+to\s+say|incorrect\s+to\s+say)\s+that\b",
    re.IGNORECASE,
)
_HYPOTHETICAL = frozenset({"if", "unless", "whether", "when", "once"})
_AUXILIARY = frozenset({"is", "are", "was", "were", "be", "been", "being", "gets", "get", "got", "do", "does", "did",
                        "can", "could", "will", "would", "should", "may", "might", "must", "has", "have", "had"})
_RELATIVE = frozenset({"that", "which", "who", "whom", "whose", "where"})
_PASSIVE_DENIALS = frozenset({"skipped", "omitted"})
SUBJECT_MAX_WORDS = 5


def _denies_its_subject(raw: list[str], i: int) -> bool:
    """Whether the cue at `i` can deny what stands before it: a negated auxiliary ("isn't", "doesn't carry over"),
    "not"/"never" right after one ("is not needed"), or a passive denial ("is skipped"). An active verb ("models
    skip it") denies its object, not its subject."""
    w = raw[i]
    if w.endswith(("n't", "n’t")):
        return True
    return (w in ("not", "never") or w in _PASSIVE_DENIALS) and raw[i - 1] in _AUXILIARY


def _alternatives(raw: list[str], hedging: bool) -> tuple[tuple[str, str], ...]:
    """Pairs of opposite direction words offered as alternatives: "either smaller or larger", "increase and/or
    decrease", or "X or Y" in a sentence that says "it depends". A plain "lower or raise the temperature to make
    output more predictable or more creative" pairs each direction with its own outcome: no hedge. Quantifiers
    are left out: "more or less" is an idiom for "about"."""
    lex = lexicon()
    out = []
    for k, w in enumerate(raw):
        if w != "or" or k < 1:
            continue
        marked = hedging or raw[k - 1] == "and" or "either" in raw[max(0, k - 3) : k]
        left = [_stem_phrase(x) for x in reversed(raw[max(0, k - 2) : k]) if x != "and"][:1]
        right = [_stem_phrase(x) for x in raw[k + 1 : k + 3] if lex.carries_direction(_stem_phrase(x))][:1]
        if marked and left and right and right[0] in lex.opposites.get(left[0], ()) and \
                not ({left[0], right[0]} & QUANTIFIERS):
            out.append((left[0], right[0]))
    return tuple(out)


_DEPENDS = re.compile(r"\b(?:it|that|this)\s+(?:all\s+)?depends\b|\bdepending\s+on\b", re.IGNORECASE)


@dataclass(frozen=True)
class PointPolarity:
    """A key point, read for polarity: its claim words (question words left out) and the role it is about.

    A word counts as stated plainly only when no clause of the point that holds it has a negation anywhere;
    otherwise the point is negative around it ("if the base case is not included") and an answer that keeps a
    negation nearby agrees ("no base case"), while one without it says nothing either way.
    """

    stems: dict[str, bool]  # stem -> the point is negative around it (its clause holds a negation)
    scoped: dict[str, bool]  # stem -> a negation scopes over the word itself (what opposites are read against)
    roles: frozenset[str]  # the contrasted roles the point names
    counter_roles: frozenset[str]  # the other role of each pair the point names
    pairs: tuple[tuple[str, str], ...] = ()  # (the point's role, the other) for each pair it names one side of
    quantified: dict[str, frozenset[str]] = field(default_factory=dict)  # quantifier stem -> the stems it quantifies
    topic: frozenset[str] = frozenset()  # the question's words: what the point is about, not what it claims
    # direction stem -> the stems around it in its clause (what it is said of: "reducing the number of parameters")
    near: dict[str, frozenset[str]] = field(default_factory=dict)


def active_roles(question: str, reference: str) -> tuple[tuple[str, str], ...]:
    """Role pairs both of whose members the question or the reference names."""
    present = {_stem_phrase(w) for w, _, _ in word_spans(question + " " + reference)}
    return tuple(p for p in lexicon().roles if p[0] in present and p[1] in present)


def prepare_point(text: str, question_stems: frozenset[str], roles: tuple[tuple[str, str], ...]) -> PointPolarity:
    lex = lexicon()
    stems: dict[str, bool] = {}
    scoped: dict[str, bool] = {}
    named: set[str] = set()
    role_stems = {s for pair in roles for s in pair}
    clauses = analyse(text)
    for clause in clauses:
        for w in clause.words:
            if w.stem in role_stems:
                named.add(w.stem)
                continue
            if w.stem in question_stems and not lex.carries_direction(w.stem):
                continue
            stems[w.stem] = stems.get(w.stem, False) or w.negated or clause.negative
            scoped[w.stem] = scoped.get(w.stem, False) or w.negated
    pairs = tuple((a, b) if a in named else (b, a) for a, b in roles if (a in named) != (b in named))
    quantified = {q: frozenset().union(*(c.after(q) for c in clauses)) for q in QUANTIFIERS if q in stems}
    near: dict[str, set[str]] = {}
    for clause in clauses:
        ws = clause.words
        for i, w in enumerate(ws):
            if w.stem in lex.magnitude:
                near.setdefault(w.stem, set()).update(x.stem for x in ws[max(0, i - NEAR_BEFORE) : i + 1 + NEAR_AFTER])
    return PointPolarity(stems, scoped, frozenset(named), frozenset(b for _, b in pairs), pairs, quantified,
                         question_stems, {k: frozenset(v) for k, v in near.items()})


NEAR_BEFORE, NEAR_AFTER = 2, 3  # words of a point read as what its direction word is said of


@dataclass(frozen=True)
class Check:
    stance: Stance
    start: int = 0  # the deciding clause, as characters of the answer
    end: int = 0
    cue: str = ""
    strength: float = 0.0
    directional: bool = False  # a direction word (reduce, faster, larger ...) is among the conflicting words
    denied: float = 0.0  # the deciding clause's words that deny the point (negated or opposite) ...
    kept: float = 0.0  # ... and that agree with it


@dataclass(frozen=True)
class _Weight:
    agree: float  # all words that agree (shared words stated alike, opposites denied)
    conflict: float
    shared: int  # words of the point the clause holds, directly or as an opposite
    cue: str
    direction_agree: float = 0.0  # the same, over words that carry a direction (reduce, faster, add ...)
    direction_conflict: float = 0.0

    def stance(self) -> Stance:
        # A claim's polarity sits in its direction words; the nouns it is about ("size", "weights") agree in a
        # denial too. So direction words decide when the clause has any, and the other words only otherwise.
        if self.direction_agree or self.direction_conflict:
            # A tie goes to the conflict: the agreeing direction words are then mostly modifiers of what the
            # claim is about ("less important weights"), the conflicting one its verb ("adds", "slows").
            return "contradict" if self.direction_conflict >= self.direction_agree else "agree"
        if self.conflict > self.agree:
            return "contradict"
        return "agree" if self.agree else "none"


def _weigh(point: PointPolarity, clause: Clause, own_scope: bool = False) -> _Weight:
    """How one clause stands to one point. With `own_scope`, every word of the point is read against its own
    negation's scope, not its clause's ("reducing the size" is stated plainly in "reducing the size without
    affecting performance"): what a denial of the point's claim denies."""
    lex = lexicon()
    clause_stems = clause.stems
    leads = clause.leads()
    agree = conflict = d_agree = d_conflict = 0.0
    shared = 0
    cue = ""
    for s, neg_p in point.stems.items():
        direction = lex.carries_direction(s)
        if direction or own_scope:
            # A direction word is read against its own scope: "improving speed without affecting accuracy" states
            # "improving" plainly, so "does not improve speed" denies it.
            neg_p = point.scoped.get(s, False)
        if s in clause_stems:
            shared += 1
            neg_a = clause_stems[s]
            if not neg_p and not neg_a:
                # The subject of a denial is shared by the claim and its denial: half a word of agreement, so
                # that one denied word of the claim outweighs it.
                agree += 0.5 if s in leads and not direction else 1
                d_agree += direction
            elif not neg_p:  # the answer denies what the point states plainly
                if direction and _denies_something_else(point, clause, s):
                    continue
                conflict += 1
                d_conflict += direction
                cue = cue or f"negates '{lex.words.get(s, s)}'"
            elif clause.negative or (direction and neg_a):  # negative point, negative answer around the same words
                agree += 1
                d_agree += direction
            continue
        for o in lex.opposites.get(s, ()):
            if o in QUANTIFIERS and s in point.quantified and not (point.quantified[s] & clause.after(o)):
                continue  # "more efficient" and "fewer parameters" quantify different things: no evidence
            if o in clause_stems and o not in point.stems and not _point_states_pole(point, s, o):
                shared += 1
                # Opposites are read against the word's own scope: "slows" contradicts a plainly stated "improving".
                if clause_stems[o] == point.scoped.get(s, False):
                    conflict += 1
                    d_conflict += 1
                    cue = cue or f"says '{lex.words.get(o, o)}' where the point says '{lex.words.get(s, s)}'"
                else:
                    agree += 1
                    d_agree += 1
                break
        else:
            q = _quantified_direction(point, clause, s)
            if q is not None:
                shared += 1
                if q[1]:
                    agree += 1
                    d_agree += 1
                else:
                    conflict += 1
                    d_conflict += 1
                    cue = cue or f"says '{lex.words.get(q[0], q[0])}' where the point says '{lex.words.get(s, s)}'"
    return _Weight(agree, conflict, shared, cue, d_agree, d_conflict)


def check_points(
    points: list[PointPolarity], clauses: list[Clause], aligned: list[tuple[int, int]] | None = None
) -> list[Check]:
    """For each point: whether the answer (its clauses, from analyse) agrees, contradicts it, or neither.

    Points are read together because a clause about the other role is normally the other point being made:
    it only counts as a swapped role when it matches this point better than any other point.

    `aligned` (characters of the answer, one span per point) is where the encoder found the point: a
    contradiction in that span outweighs agreement elsewhere, which is often only the point's nouns ("process",
    "text") said again in a clause about something else.
    """
    lex = lexicon()
    table = [[_weigh(p, c) for c in clauses] for p in points]
    best_point = [
        max(range(len(points)), key=lambda k: (table[k][j].shared, table[k][j].agree)) if points else -1
        for j in range(len(clauses))
    ]
    withdrawn_by = _withdrawn(clauses)
    refers_back = [_refers_back(c) for c in clauses]
    # The rubric's matter: its points' words and the question's ("pruning either makes the model smaller or
    # larger" names no word of a point but the question's own).
    rubric_words = {s for p in points for s in p.stems} | {s for p in points for s in p.topic}
    sentences: dict[int, tuple[int, int]] = {}  # sentence index -> (first character, last character) of its clauses
    for c in clauses:
        a, b = sentences.get(c.sentence, (c.start, c.end))
        sentences[c.sentence] = (min(a, c.start), max(b, c.end))
    out: list[Check] = []
    for k, point in enumerate(points):
        if not point.stems:
            out.append(Check("none"))
            continue
        best_agree = Check("none")
        best_conflict = Check("none")
        direction_agreed = False  # some clause agrees with the point on a word that carries its direction
        withdrawn, retraction = 0.0, None
        last = Check("none")  # the answer's last word on the point: its last clause that agrees or contradicts
        last_clause: Clause | None = None
        said: set[str] = set()  # the words of the clauses that agree with the point
        entity: frozenset[str] = frozenset()
        # The roles that tell the entities apart: of each pair the point names one side of ("supervised" of
        # supervised/unsupervised). A pair it names both sides of ("input ... output") is part of its claim, not
        # whom the claim is about; counted as a role it hid the swap in "unsupervised learning uses labeled data
        # where each input has the correct output".
        own_roles = frozenset(a for a, _ in point.pairs)
        role_stems = own_roles | point.counter_roles
        for j, clause in enumerate(clauses):
            cs = clause.stems
            named = frozenset(s for s in cs if s in role_stems)
            if named:
                entity = named
            elif not refers_back[j]:
                # "…; for images, apply style transfer" is about no entity named before: only "it", "they", "this"
                # carry the last one on.
                entity = frozenset()
            wt = table[k][j]
            content = sum(1 for w in clause.words if w.content)
            hedge = _hedge(point, clause)
            # The hedged pair is one word of the point's claim (its direction) even when neither word is the point's.
            shared = wt.shared + (hedge is not None and not any(s in point.stems or s in lex.opposites.get(p, ())
                                                                 for s in hedge for p in point.stems))
            # A hedge in the sentence where the encoder found the point hedges it, however few of its words it
            # repeats ("the network gets either smaller or larger, it depends" for "reducing the model size"), when
            # it is about the rubric's matter (a word of any of its points besides the hedged pair): "depending on
            # the optimizer, increase or decrease the learning rate" is not, wherever the encoder put the point.
            hedged_here = (hedge is not None and aligned is not None
                           and _inside(aligned[k], sentences[clause.sentence]) > 0.5
                           and any(w.stem in rubric_words and w.stem not in hedge for w in clause.words))
            # One pair kept and another swapped ("BERT is the unidirectional one" against "GPT is unidirectional"):
            # the clause gives the point's property to the other entity, whichever point it is closest to. The
            # roles are the claim there, so the clause counts however few other words of the point it repeats
            # ("GPT is bidirectional and uses context on both sides" against "BERT ... considers both the left
            # and right context").
            kept = [(a, b) for a, b in point.pairs if a in entity and b not in entity]
            crossed = [(a, b) for a, b in point.pairs if b in entity and a not in entity]
            if shared < min(2, len(point.stems)) and not (wt.shared and wt.conflict and content <= 3) \
                    and not hedged_here and not (kept and crossed and named):
                continue
            swapped = bool(own_roles and entity and not (entity & own_roles) and entity & point.counter_roles)
            stance, cue = wt.stance(), wt.cue
            strength = wt.conflict if stance == "contradict" else wt.agree
            if kept and crossed:
                theirs = "/".join(lex.words.get(b, b) for _, b in crossed)
                meant = "/".join(lex.words.get(a, a) for a, _ in crossed)
                stance, strength = "contradict", wt.agree + wt.conflict
                cue = f"says {theirs} where the point says {meant}"
            elif swapped and best_point[j] == k and wt.shared >= min(3, len(point.stems)):
                # The clause says this point's claim of the other role: its shared words are the contradiction.
                other = "/".join(sorted(lex.words.get(s, s) for s in entity & point.counter_roles))
                own = "/".join(sorted(lex.words.get(s, s) for s in own_roles))
                stance, strength = "contradict", wt.agree + wt.conflict
                cue = f"says of {other} what the point says of {own}"
            elif swapped:
                continue  # another point's claim, about the other role: no evidence either way
            if hedge:
                # Both directions of the claim offered as alternatives: the clause commits to neither.
                stance, strength = "contradict", max(1.0, wt.agree + wt.conflict)
                cue = "offers both '{}' and '{}'".format(*(lex.words.get(s, s) for s in hedge))
            if withdrawn_by[j] is not None:
                # Taken back later in the answer: a contradiction said and withdrawn is no evidence; an agreement
                # said and withdrawn is only noted, and decides below if nothing after the withdrawal agrees.
                if stance == "agree" and strength > withdrawn:
                    withdrawn, retraction = strength, withdrawn_by[j]
                continue
            directional = wt.direction_conflict > 0 or bool(hedge)
            if stance == "agree":
                said |= {w.stem for w in clause.words}
            if stance in ("agree", "contradict"):
                denial = _weigh(point, clause, own_scope=True) if stance == "contradict" else wt
                last = Check(stance, clause.start, clause.end, cue if stance == "contradict" else "", strength,
                             directional, denial.conflict, denial.agree)
                last_clause = clause
            if stance == "contradict" and strength > best_conflict.strength:
                best_conflict = Check("contradict", clause.start, clause.end, cue, strength, directional)
            elif stance == "agree" and strength > best_agree.strength:
                best_agree = Check("agree", clause.start, clause.end, "", strength)
            if stance == "agree" and wt.direction_agree:
                direction_agreed = True
        if withdrawn and retraction is not None and best_agree.stance == "none" and best_conflict.stance == "none":
            r = clauses[retraction]
            out.append(Check("contradict", r.start, r.end, "takes back what it said", withdrawn + 1))
            continue
        # Stated, then denied: the answer's last word on the point counts, as a retraction's would. Only a denial
        # of the claim's direction that denies two of the point's words or more, and more than it keeps ("does not
        # reduce the size of a network"), overturns a statement: one opposite or negated word in a later clause is
        # mostly a contrast with another thing ("A dynamic array gets its size at runtime", "an array that is not
        # declared static", Mohler dev), and so is a denial that says more about something the answer has not
        # said ("it does not reduce the size of the training data"). A myth stated and then rebutted ("some think it makes models larger, but
        # it reduces their size") ends agreeing.
        if best_agree.stance == "agree" and last.stance == "contradict" and last.directional and last.denied >= 2 \
                and last.denied > max(last.kept, _foreign(last_clause, point, said)):
            out.append(replace(last, cue=f"{last.cue}, after stating the point"))
            continue
        # Only a conflict of two words or more, in the claim's direction ("merges ... larger" for "breaking ...
        # smaller"): one negated or opposite word in the aligned span ("it is not created each time the array is
        # called", "not declared as static") is as often a true statement about another thing (Mohler dev).
        if aligned is not None and best_conflict.directional and best_conflict.strength >= 2 and \
                _overlap(best_conflict, aligned[k]) > max(0.5, _overlap(best_agree, aligned[k])):
            out.append(best_conflict)
            continue
        # A claim of a direction ("better results than training from scratch") is contradicted by a clause that
        # reverses it ("results are worse") when no clause states the direction: agreement on the other words only
        # ("train from scratch") is what the claim is about or compared with, not the claim.
        if best_conflict.directional and not direction_agreed and \
                any(lex.carries_direction(s) and s not in QUANTIFIERS for s in point.stems):
            out.append(best_conflict)
            continue
        out.append(best_conflict if best_conflict.strength > best_agree.strength else best_agree)
    return out


def _point_states_pole(point: PointPolarity, s: str, o: str) -> bool:
    """Whether the point itself states the direction of `o` in other words ("a large dataset … a smaller one": an
    answer's "big" is its "large", not a denial of "smaller")."""
    lex = lexicon()
    against = lex.opposites.get(o, frozenset())
    return any(t != s and lex.opposites.get(t, frozenset()) & against for t in point.stems)


def _quantified_direction(point: PointPolarity, clause: Clause, s: str) -> tuple[str, bool] | None:
    """A quantifier of the answer read as a direction of the amount it quantifies, against the point's amount word
    `s`: "more parameters" against "reducing the number of parameters" is (more, False), a conflict; "fewer
    parameters" agrees. Only when the quantified word is one the point states: "more efficient" says nothing of
    "reducing the size". None when the clause has no such quantifier."""
    lex = lexicon()
    sign = lex.magnitude.get(s)
    if sign is None or s in QUANTIFIERS:
        return None
    objects = {t for t in point.near.get(s, ()) if t in point.stems and t not in lex.magnitude
               and not lex.carries_direction(t)}
    for q in QUANTIFIERS:
        if q in clause.stems and q in lex.magnitude and clause.after(q) & objects:
            same = lex.magnitude[q] == sign
            # A negated quantifier ("not more parameters") flips, as a negated point word does.
            return q, same != (clause.stems[q] != point.scoped.get(s, False))
    return None


_BACK_REFERENCE = re.compile(r"\s*(?:(?:and|but|so|while|whereas|which|that|then|also|plus|,)\s+)*"
                             r"(?:it|its|it's|they|their|them|this|these|he|she|which|that|so)\b", re.IGNORECASE)


def _refers_back(clause: Clause) -> bool:
    """Whether a clause starts by referring to what was named before ("it reads …", "and they …", "which …")."""
    return bool(_BACK_REFERENCE.match(clause.text))


_OBJECT_GAP = re.compile(r"\s+(?:(?:the|a|an|its|their|any|that|this|these|those)\s+)*")
OBJECT_MAX_WORDS = 3


def _denies_something_else(point: PointPolarity, clause: Clause, s: str) -> bool:
    """Whether the answer's denial of the direction word `s` is of another object than the point's claim: the words
    right after it (its object: "reduce [the] model size") are none the point states plainly. "without reducing
    accuracy" and "does not reduce performance" say what "reducing the size without affecting performance" says in
    its negative part; "does not reduce the size" denies its claim; a denial with no object right after the word
    ("it does not reduce", "does not improve over training from scratch") is read as a denial."""
    words = clause.words
    at = [i for i, w in enumerate(words) if w.stem == s and w.negated]
    if not at:
        return False
    objects: list[Word] = []
    for w in words[at[-1] + 1 :]:
        prev = objects[-1] if objects else words[at[-1]]
        gap = clause.text[prev.end - clause.start : w.start - clause.start]
        if len(objects) >= OBJECT_MAX_WORDS or not _OBJECT_GAP.fullmatch(gap):
            break
        objects.append(w)
    if not objects:
        return False
    plain = {t for t, scoped in point.scoped.items() if not scoped and t != s}
    return not any(w.stem in plain for w in objects)


def _foreign(clause: Clause | None, point: PointPolarity, said: set[str]) -> int:
    """Content words of a clause that are neither the point's nor in what the answer said agreeing with it."""
    if clause is None:
        return 0
    return len({w.stem for w in clause.words if w.content} - point.stems.keys() - said)


def _hedge(point: PointPolarity, clause: Clause) -> tuple[str, str] | None:
    """The pair of opposite directions the clause offers as alternatives, when it is on the axis of one of the
    point's own direction words ("smaller or larger" for "reduce the size"); None otherwise, so that "increase or
    decrease the learning rate" is no hedge of a point about something else."""
    if not clause.alternatives:
        return None
    lex = lexicon()
    axis = {s for s in point.stems if lex.carries_direction(s) and s not in QUANTIFIERS}
    # The point's direction, its opposites, and theirs: "reduce" and "smaller" are one direction of one axis.
    for _ in range(2):
        axis |= {o for s in axis for o in lex.opposites[s] if o not in QUANTIFIERS}
    pair = next((pair for pair in clause.alternatives if axis & set(pair)), None)
    # A clause that also states a direction of the point outside the alternatives ("increase or decrease the
    # learning rate, and pruning removes weights to reduce the size") hedges about something else.
    if pair is None or any(w.stem in axis and w.stem not in pair for w in clause.words):
        return None
    return pair


def _withdrawn(clauses: list[Clause]) -> list[int | None]:
    """For each clause, the later clause that takes it back (None if none does): a "that is false" takes back its
    own sentence and the one before; an "everything I wrote is wrong", every clause before it."""
    out: list[int | None] = [None] * len(clauses)
    for r, c in enumerate(clauses):
        if not c.retracts:
            continue
        # "That" at the start of a sentence points at the sentence before; inside one ("Some think it makes the
        # network larger, but that is a myth") at what its own sentence said before it.
        own = any(clauses[j].sentence == c.sentence for j in range(r))
        for j in range(r):
            if c.retracts == "all" or clauses[j].sentence >= c.sentence - (0 if own else 1):
                out[j] = r
    return out


def _inside(span: tuple[int, int], outer: tuple[int, int]) -> float:
    """The share of `span` inside `outer` (characters)."""
    if span[1] <= span[0]:
        return 0.0
    return max(0, min(outer[1], span[1]) - max(outer[0], span[0])) / (span[1] - span[0])


def _overlap(check: Check, span: tuple[int, int]) -> float:
    """The share of `span` inside the check's clause."""
    return 0.0 if check.stance == "none" else _inside(span, (check.start, check.end))
