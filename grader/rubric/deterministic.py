"""The deterministic rubric builder: a reference answer becomes weighted key points without a model.

Pipeline (each step a small pure function):
  1. blocks    - paragraphs and bullet items; a list intro ending in ':' is context for its bullets, not a point
  2. sentences - each block split into sentences; connectives ('on the other hand', 'First,') removed; a
                 leading 'It'/'This'/'They' replaced by what it refers to, so each point reads on its own
  3. claims    - a sentence is split only where the split is clean: 'The benefits of X include A, B, and C',
                 'X is used to A, B, and C', 'X does A and can B', 'X does A, which can B', 'I would A, and B'
  4. ideas     - filler (nothing beyond the question's words) dropped; a fragment too short to stand alone
                 joins its neighbour; a bullet's label ('Fine-tuning: ...') stays with each of its sentences
  5. criteria  - weight = distinct content words not already in the question (at least 3), normalised to sum
                 to 1; keywords = the most specific of those words; credit levels written from the point
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.models import CreditLevels, Criterion, Question, Rubric
from grader.rubric.text import (
    FRAMING_STEMS,
    TOKEN_RE,
    content_stems,
    content_words,
    is_content,
    stem,
    tokens,
    words,
)

BUILDER_NAME = "deterministic/v1"

MIN_CONTENT_WORDS = 3  # a sentence with fewer content words is a fragment and joins its neighbour
WEIGHT_FLOOR = 3  # even a short point (a step of a process) is worth something
MAX_KEYWORDS = 5

_BULLET_RE = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,2}[.)]|[a-z][.)])\s+(.*)$")
_LABEL_RE = re.compile(r"^(?P<label>[^.:!?]{1,60}?):\s+(?P<body>\S.*)$")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "incl.", "dr.", "mr.", "ms.", "fig.", "no.")

_LEADING_CONNECTIVES = re.compile(
    r"^(?:however|moreover|furthermore|additionally|in addition|also|finally|first|firstly|second|secondly|"
    r"third|thirdly|next|then|lastly|on the other hand|in contrast|overall|in summary|in short|in general)"
    r",?\s+(?=\S)",
    re.IGNORECASE,
)
_INNER_CONNECTIVES = re.compile(
    r",\s*(?:on the other hand|in contrast|however|moreover|furthermore|in addition|additionally|therefore|thus)"
    r"\s*,",
    re.IGNORECASE,
)
# "The benefits of model distillation include A, B, and C": each item is its own claim.
_LIST_HEAD_RE = re.compile(
    r"^(?P<head>.*\b(?:benefits?|advantages?|disadvantages?|drawbacks?|challenges?|uses|applications|"
    r"limitations?)\b.*?\b(?:include|includes|are)\b|.*\b(?:is|are) used to)\s+(?P<items>.+?)\.?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Block:
    text: str
    is_bullet: bool
    context: str | None = None  # the list intro a bullet belongs to


@dataclass(frozen=True)
class Idea:
    text: str  # the point as it will be shown (label prefix included)
    own: str  # the words this point contributes (label excluded when not the first sentence)
    block: int
    context: str | None = None  # the list intro the point answers, shown in its credit levels


# --- 1. blocks -------------------------------------------------------------------------------------------


def split_blocks(reference: str) -> list[Block]:
    """Paragraphs and bullet items; a paragraph ending in ':' followed by bullets is their context."""
    raw: list[tuple[str, bool]] = []
    current: list[str] = []
    current_bullet = False

    def flush() -> None:
        nonlocal current
        if current:
            raw.append((" ".join(s.strip() for s in current).strip(), current_bullet))
        current = []

    for line in reference.splitlines():
        if not line.strip():
            flush()
            continue
        m = _BULLET_RE.match(line)
        if m:
            flush()
            current, current_bullet = [m.group(1)], True
        else:
            if not current:
                current_bullet = False
            current.append(line)
    flush()

    blocks: list[Block] = []
    context: str | None = None
    for i, (text, is_bullet) in enumerate(raw):
        if not text:
            continue
        if is_bullet:
            blocks.append(Block(text, True, context))
            continue
        next_is_bullet = i + 1 < len(raw) and raw[i + 1][1]
        # A list intro is context for the bullets after it; it stays a block too, so step 3 can decide
        # whether it says anything of its own.
        context = text[:-1].strip() if text.endswith(":") and next_is_bullet else None
        blocks.append(Block(text, False, None))
    return blocks


# --- 2. sentences ----------------------------------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Sentence split that does not break at 'e.g.', 'i.e.', decimals or single initials."""
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?](?=\s+[A-Z0-9(\"'$])", text):
        end = m.end()
        before = text[start:end].split()
        last = before[-1].lstrip("(\"'[") if before else ""
        if last.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", last):
            continue
        out.append(text[start:end].strip())
        start = end
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def clean_sentence(sentence: str) -> str:
    """Remove connectives that only link sentences ('on the other hand', leading 'However,')."""
    s = _INNER_CONNECTIVES.sub("", sentence)
    stripped = _LEADING_CONNECTIVES.sub("", s)
    if stripped != s and stripped:
        s = stripped[0].upper() + stripped[1:]
    return re.sub(r"\s{2,}", " ", s).strip()


# --- 3. ideas --------------------------------------------------------------------------------------------

_SUBJECT_RE = re.compile(
    r"^(?P<subj>[A-Z][^,;:]*?)\s+(?:is|are|was|were|involves?|learns?|reduces?|improves?|allows?|provides?|"
    r"captures?|calculates?|uses?|has|have|can|could|would|will|may|refers?|means?|helps?|makes?|leads?|"
    r"leverages?|estimates?|focus(?:es)?|generates?|considers?|requires?|takes?|trains?|predicts?)\b"
)
_EXPLETIVE_RE = re.compile(
    r"^It(?:'s| is) (?:not )?(?:important|challenging|difficult|hard|easy|possible|impossible|necessary|"
    r"crucial|common|useful|essential|best|better|recommended|likely|unlikely|clear|worth)\b"
)
_THIS_VERB_RE = re.compile(r"^This (?=(?:is|helps|reduces|allows|means|leads|makes|improves|enables|gives)\b)")
_THIS_NOUN_RE = re.compile(r"^This (?:approach|technique|method|process|model)\b")
_MODAL_SPLIT_RE = re.compile(r"^(?P<a>.+?),?\s+and\s+(?P<b>(?:can|could|may|might|will|would)\s+.+)$")


def subject_of(sentence: str) -> str | None:
    """The sentence's subject when it is a short noun phrase ('Quantization', 'Discriminative models')."""
    m = _SUBJECT_RE.match(sentence)
    if not m:
        return None
    subj = re.sub(r"\s*\([^)]*\)", "", m.group("subj")).strip()
    if not subj or len(subj.split()) > 6 or subj.split()[0] in ("It", "This", "They", "These", "Their", "I", "We"):
        return None
    return subj


def resolve_reference(sentence: str, antecedent: str | None) -> str:
    """Replace a leading 'It', 'They', 'This', 'This approach', 'These models', 'Their' by what it refers to,
    so a key point reads on its own."""
    if not antecedent or re.search(rf"\b{re.escape(antecedent)}\b", sentence) or _EXPLETIVE_RE.match(sentence):
        return sentence
    last = antecedent.split()[-1]
    for pattern, repl in (
        (r"^It's ", f"{antecedent} is "),
        (r"^It ", f"{antecedent} "),
        (r"^They ", f"{antecedent} "),
        (rf"^These {re.escape(last)}\b", antecedent),
        (r"^Their ", f"{antecedent}'s "),
    ):
        new = re.sub(pattern, repl, sentence)
        if new != sentence:
            return new
    if _THIS_NOUN_RE.match(sentence):
        return _THIS_NOUN_RE.sub(antecedent, sentence)
    if _THIS_VERB_RE.match(sentence):
        return _THIS_VERB_RE.sub(f"{antecedent} ", sentence)
    return sentence


def _new_stems(text: str, question_stems: set[str]) -> set[str]:
    return {s for s in content_stems(text) if s not in question_stems and s not in FRAMING_STEMS}


def _split_list_sentence(sentence: str) -> list[tuple[str, str]]:
    """'The benefits of X include A, B, and C.' -> one (text, own-words) pair per item, when clean."""
    m = _LIST_HEAD_RE.match(sentence)
    if not m:
        return [(sentence, sentence)]
    items = [i.strip() for i in re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+(?=[^,]*$)", m.group("items"))]
    items = [i for i in items if i]
    if len(items) < 3 or any(len(i.split()) > 10 or " such as " in f" {i} " for i in items):
        return [(sentence, sentence)]
    head = m.group("head")
    return [(f"{head} {item}.", item) for item in items]


def _split_modal_sentence(sentence: str) -> list[tuple[str, str]]:
    """'Quantization reduces the model size and can speed up inference ...' -> two claims, same subject."""
    subj = subject_of(sentence)
    m = _MODAL_SPLIT_RE.match(sentence)
    if not subj or not m or ("(" in m.group("a") and ")" not in m.group("a")):
        return [(sentence, sentence)]
    a, b = m.group("a").rstrip(" ,"), m.group("b")
    if len(content_words(a)) < MIN_CONTENT_WORDS + 1 or len(content_words(b)) < MIN_CONTENT_WORDS:
        return [(sentence, sentence)]
    second = f"{subj} {b}"
    return [(a + ".", a), (second, b)]


_WHICH_MODAL_RE = re.compile(r"^(?P<a>.+?),\s+which\s+(?P<b>(?:can|could|may|will|would)\s+.+)$")
_WHICH_HELPS_RE = re.compile(r"^(?P<a>.+?),\s+which\s+(?:helps|allows|enables)\s+(?:it|them)\s+(?:to\s+)?(?P<b>.+)$")
_LEADING_TO_RE = re.compile(
    r"^(?P<a>.+?),\s+(?P<adv>(?:often|usually|typically|generally)\s+)?leading to\s+(?P<b>.+)$"
)
_FIRST_PERSON_STEPS_RE = re.compile(
    r"^(?P<subj>(?:I|We|You) would)\s+(?P<a>.+?),\s+and\s+(?P<b>[a-z][\w-]*\s+(?:it|them|the|a|an)\b.+)$"
)


def _plural(noun_phrase: str) -> bool:
    last = noun_phrase.split()[-1]
    return last.endswith("s") and not last.endswith("ss") and not last.isupper()


def _split_consequence(sentence: str) -> list[tuple[str, str]]:
    """A claim and its consequence joined by ', which can ...', ', which helps it ...', ', leading to ...'
    become two claims with the same subject; so do two steps in 'I would A, and B'."""
    m = _FIRST_PERSON_STEPS_RE.match(sentence)
    if m:
        a, b = m.group("a"), m.group("b")
        if len(content_words(a)) >= MIN_CONTENT_WORDS and len(content_words(b)) >= MIN_CONTENT_WORDS:
            # 'choose a model ..., and fine-tune it' -> 'fine-tune the model': the step reads on its own.
            last_noun = next((w for w in reversed(tokens(a)) if w.isalpha() and is_content(w)), None)
            shown_b = re.sub(r"^(\S+) it\b", rf"\1 the {last_noun}", b) if last_noun else b
            return [(f"{m.group('subj')} {a}.", a), (f"{m.group('subj')} {shown_b}", b)]
        return [(sentence, sentence)]
    subj = subject_of(sentence)
    if not subj:
        return [(sentence, sentence)]
    for pattern, second in (
        (_WHICH_MODAL_RE, lambda mm: f"{subj} {mm.group('b')}"),
        (_WHICH_HELPS_RE, lambda mm: f"{subj} can {mm.group('b')}"),
        (
            _LEADING_TO_RE,
            lambda mm: f"{subj} {mm.group('adv') or ''}{'lead' if _plural(subj) else 'leads'} to {mm.group('b')}",
        ),
    ):
        m = pattern.match(sentence)
        if not m:
            continue
        a, b = m.group("a"), m.group("b")
        if len(content_words(a)) < MIN_CONTENT_WORDS + 1 or len(content_words(b)) < MIN_CONTENT_WORDS + 1:
            return [(sentence, sentence)]
        return [(a + ".", a), (second(m), b)]
    return [(sentence, sentence)]


def split_claims(sentence: str) -> list[tuple[str, str]]:
    """A sentence's distinct claims as (shown text, own words): most sentences are one claim."""
    for splitter in (_split_list_sentence, _split_modal_sentence, _split_consequence):
        parts = splitter(sentence)
        if len(parts) > 1:
            return parts
    return [(sentence, sentence)]


def _label_of(text: str) -> tuple[str | None, str]:
    m = _LABEL_RE.match(text)
    if m and len(m.group("label").split()) <= 7:
        return m.group("label").strip(), m.group("body").strip()
    return None, text


def _context_phrase(intro: str | None) -> str | None:
    """'Handling missing data can be done using several techniques, such as:' -> the part before 'such as'."""
    if not intro:
        return None
    phrase = re.sub(
        r",?\s*(?:such as|include|includes|including|are|is|the following(?: steps)?|as follows)\s*:?$",
        "", intro.rstrip(": "), flags=re.IGNORECASE,
    )
    phrase = re.sub(r"\s+involves$", "", phrase)
    return phrase or None


@dataclass(frozen=True)
class _Piece:
    shown: str
    own: str
    atomic: bool = False  # one item of a split list: a claim of its own, however short


def extract_ideas(reference: str, question: str) -> list[Idea]:
    question_stems = content_stems(question)
    ideas: list[Idea] = []
    for b_index, block in enumerate(split_blocks(reference)):
        text = block.text
        if not block.is_bullet and text.endswith(":"):
            # A list intro: a point only if it says something beyond the question and framing words.
            if len(_new_stems(text, question_stems)) < MIN_CONTENT_WORDS:
                continue
            text = text[:-1].rstrip() + "."
        label, body = _label_of(text) if block.is_bullet else (None, text)
        pieces: list[_Piece] = []
        antecedent = label
        for k, raw in enumerate(split_sentences(body)):
            sentence = clean_sentence(raw)
            resolved = resolve_reference(sentence, antecedent if (k > 0 or label) else None)
            # Within a labelled bullet the label stays the referent; elsewhere the last subject is.
            if not label:
                antecedent = subject_of(resolved) or antecedent
            claims = split_claims(resolved)
            if len(claims) == 1:
                # A resolved pronoun shows its referent but does not add the referent's words as its own.
                pieces.append(_Piece(resolved, sentence))
            else:
                pieces.extend(_Piece(shown, own, atomic=True) for shown, own in claims)
        merged: list[_Piece] = []
        for p in pieces:
            if not _new_stems(p.shown, question_stems) and (merged or len(pieces) > 1):
                continue  # filler: nothing beyond the question and framing words
            if merged and not p.atomic and len(content_words(p.own)) < MIN_CONTENT_WORDS:
                prev = merged[-1]
                merged[-1] = _Piece(f"{prev.shown} {p.shown}", f"{prev.own} {p.own}")
                continue
            merged.append(p)
        # A fragment at the start of a block joins the point after it.
        if len(merged) > 1 and not merged[0].atomic and len(content_words(merged[0].own)) < MIN_CONTENT_WORDS:
            merged[:2] = [_Piece(f"{merged[0].shown} {merged[1].shown}", f"{merged[0].own} {merged[1].own}")]
        for k, p in enumerate(merged):
            if label is None:
                ideas.append(Idea(p.shown, p.own, b_index, _context_phrase(block.context)))
            elif k == 0:
                # The first sentence carries the label as part of its idea.
                ideas.append(Idea(f"{label}: {p.shown}", f"{label}: {p.own}", b_index, None))
            elif p.shown.startswith(label):
                ideas.append(Idea(p.shown, p.own, b_index, None))  # already names its subject
            else:
                ideas.append(Idea(f"{label}: {p.shown}", p.own, b_index, None))
    return ideas


# --- 4. criteria -----------------------------------------------------------------------------------------

# Words that rarely tell one point from another: never keywords (they still count for weight).
_WEAK_KEYWORDS = frozenset(
    stem(w)
    for w in words("""
    applying apply applies provide provides providing known means set need needs taking take takes gained
    available consider considers relevant suitable appropriate significantly affecting affect required
    represent different another high low full number wide range possible various new better more less
    much many whole able ability become becomes way work works important effective simple effectively
    model models data training trained learn learning given input output text task tasks time user users
    lead leads leading achieve achieves choose
    """)
)


def idea_weight(own: str, question_stems: set[str]) -> int:
    return max(WEIGHT_FLOOR, len(_new_stems(own, question_stems)))


def normalise_weights(raw: list[float], total: float = 1.0) -> list[float]:
    """Scale to sum to ``total``, round to 2 decimals (each at least 0.01), fix the rounding residue."""
    if not raw:
        return []
    s = sum(raw)
    weights = [max(0.01, round(total * w / s, 2)) for w in raw]
    residue = round(total - sum(weights), 2)
    if residue:
        i = max(range(len(weights)), key=lambda j: weights[j])
        weights[i] = round(max(0.01, weights[i] + residue), 2)
    return weights


def _keyword_score(token: str, position: int) -> float:
    score = 1.0
    letters = [c for c in token if c.isalpha()]
    if sum(c.isupper() for c in letters) >= 2:
        score += 3  # acronyms: BERT, RLHF, KNN
    elif token[:1].isupper():
        score += 1.5  # proper names mid-sentence: PyTorch, Torch
    if any(c.isdigit() for c in token) or "-" in token:
        score += 2  # specific terms: 8-bit, left-to-right, F1-score
    if len(token) >= 8:
        score += 1
    return score


def _without_expansions(text: str) -> str:
    """Drop the spelled-out form after an acronym ('BERT (Bidirectional Encoder ...)'); keep other brackets."""
    return re.sub(r"\b([A-Z][A-Z0-9]+)\s*\([^()]*\)", r"\1", text)


def _sentence_initial(text: str) -> set[int]:
    """Indexes (in tokens(text)) of words that start a sentence or follow a label's colon."""
    starts = set()
    for i, m in enumerate(TOKEN_RE.finditer(text)):
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".:!?":
            starts.add(i)
    return starts


def extract_keywords(own: str, question_stems: set[str], limit: int = MAX_KEYWORDS) -> list[str]:
    """The most telling words of the point, in the order they appear."""
    candidates: dict[str, tuple[float, int, str]] = {}
    text = _without_expansions(own)
    initial = _sentence_initial(text)
    for pos, tok in enumerate(tokens(text)):
        if not is_content(tok):
            continue
        if pos in initial and not sum(c.isupper() for c in tok) >= 2:
            tok = tok.lower() if not any(c.isupper() for c in tok[1:]) else tok
        st = stem(tok)
        if st in question_stems or st in FRAMING_STEMS or st in _WEAK_KEYWORDS:
            continue
        if len(tok) < 3 and not tok.isupper():
            continue
        if st not in candidates:
            upper = sum(c.isupper() for c in tok)
            keep_case = upper >= 2 or any(c.isdigit() for c in tok) or tok[:1].isupper()
            candidates[st] = (_keyword_score(tok, pos), pos, tok if keep_case else tok.lower())
    best = sorted(candidates.values(), key=lambda t: (-t[0], t[1]))[:limit]
    return [shown for _, _, shown in sorted(best, key=lambda t: t[1])]


def credit_levels(keywords: list[str], context: str | None = None) -> CreditLevels:
    hint = f" (e.g. mentions {' or '.join(keywords[:2])})" if keywords else ""
    where = f", as one answer to: {context}" if context else ""
    return CreditLevels(
        full=f"States the whole point correctly and specifically{where}.",
        partial=f"Gets part of the point{hint} but leaves out or blurs the rest.",
        none="Does not make the point, or says something that contradicts it.",
    )


def build_criteria(question: str, reference: str) -> list[Criterion]:
    """The weighted key points of one reference answer."""
    question_stems = content_stems(question)
    ideas = extract_ideas(reference, question)
    if not ideas:
        # A reference with no point beyond the question's words is still one point: the whole answer.
        ideas = [Idea(" ".join(reference.split()), reference, 0, None)]
    weights = normalise_weights([idea_weight(i.own, question_stems) for i in ideas])
    criteria = []
    for n, (idea, weight) in enumerate(zip(ideas, weights, strict=True), start=1):
        text = idea.text if idea.text[-1] in ".!?" else idea.text + "."
        keywords = extract_keywords(idea.own, question_stems)
        c = Criterion(
            id=f"c{n}",
            text=text,
            weight=weight,
            keywords=keywords,
            levels=credit_levels(keywords, idea.context),
            origin="auto",
        )
        criteria.append(c.model_copy(update={"fingerprint": c.content_hash()}))
    return criteria


def build_rubric(question: Question) -> Rubric:
    """A rubric for one question, built from its reference answer alone (pure and deterministic)."""
    criteria = build_criteria(question.question, question.reference_answer)
    return Rubric(**question.model_dump(), criteria=criteria, builder=BUILDER_NAME)
