"""Signals for one answer against one rubric, from the encodings of one forward pass each.

Pure functions. The rubric side (question, reference, criteria) is prepared once into a
``RubricContext``; each answer then costs a few small matrix products. Which signals the calibration
uses is decided by question-grouped cross-validation (grader/embedding/README.md); the others stay
because they are nearly free and the ablation table needs them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from grader.embedding.calibration import CoverageMap, ramp
from grader.embedding.claims import statement_signals
from grader.embedding.encoder import TokenEncoding
from grader.embedding.polarity import PointPolarity, active_roles, analyse, check_points, prepare_point
from grader.embedding.text import STOP_WORDS, stem, word_spans

WINDOW_SIZES = (6, 12)
WINDOW_STRIDE = 3

SIGNAL_NAMES = (
    "cos_ref",
    "cos_q",
    "topicality",
    "ref_minus_q",
    "cos_ref_qd",
    "coverage_qd",
    "coverage_qd_min",
    "crit_recall_qd",
    "crit_recall_qd_min",
    "tok_recall_qd",
    "tok_precision_qd",
    "lex_recall_qd",
    "lex_precision_qd",
    "log_len_ratio",
    # Truth signals (issue 10): what the answer says, not only what it talks about.
    "contradicted_weight",
    "credited",
    "crit_recall_true",
    "point_words_true",
    "fluency",
    "function_ratio",
    "claim_share",
    "list_share",
    "listed_claims",
    "ref_bigrams",
    "topic_margin",
    "own_topic",
    "statement",
    "topic_margin_qd",
    "generic_margin_qd",
)

# An answer this short is a terse answer, not a keyword list: the statement signals only judge longer ones.
STATEMENT_MIN_WORDS = 8

# Per-point credit from similarity, the map the calibration shows per point by default: the ``credited`` signal is
# the weight of the points an answer makes and does not contradict.
_CREDIT = CoverageMap()


@dataclass(frozen=True)
class Span:
    start: int  # token index, inclusive
    end: int  # token index, exclusive


@dataclass(frozen=True)
class CriterionMatch:
    """How one key point fared: best span similarity, token recall, where the span is, and polarity."""

    span_similarity: float
    recall: float
    char_start: int
    char_end: int
    contradicted: bool = False
    contra_start: int = 0  # the clause that contradicts the point, as characters of the answer
    contra_end: int = 0
    cue: str = ""

    @property
    def similarity(self) -> float:
        # Span similarity finds where the point is made; token recall checks its words are there.
        return 0.5 * (self.span_similarity + self.recall)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def token_stems(enc: TokenEncoding, spans: list[tuple[str, int, int]] | None = None) -> list[str]:
    """The stem of the word each word piece belongs to; '' for stop words and punctuation."""
    spans = word_spans(enc.text) if spans is None else spans
    out: list[str] = []
    j = 0
    for s, _e in enc.offsets:
        while j < len(spans) and spans[j][2] <= s:
            j += 1
        if j < len(spans) and spans[j][1] <= s < spans[j][2]:
            w = spans[j][0]
            out.append("" if w in STOP_WORDS else stem(w))
        else:
            out.append("")
    return out


def _snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a character span so it never starts or ends inside a word (windows cut word pieces)."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end


# Beyond one window of the encoder (254 word pieces) an answer is also placed by its best stretch of 128.
LONG_ANSWER_PIECES = 254
LONG_STRETCH = 128


def _margins(pool: np.ndarray, ctx: RubricContext) -> tuple[float, float]:
    """(topic margin, generic margin) of a pooled, question-demoted embedding: its similarity to the reference
    minus its largest similarity to the bank's other questions and the everyday texts (or the latter only: a
    bank's near-duplicate questions cannot pull an answer down on the generic margin)."""
    own = float(pool @ ctx.reference_pooled_qd)
    sims = ctx.distractors @ pool
    generic = sims[: ctx.n_generic]
    return own - float(sims.max()), own - (float(generic.max()) if len(generic) else 0.0)


def _stretches(keep: np.ndarray) -> list[np.ndarray]:
    """Masks of overlapping stretches of LONG_STRETCH word pieces, for texts longer than the encoder reads at once
    (none otherwise: a short answer is placed by all of it)."""
    n = keep.size
    if n <= LONG_ANSWER_PIECES:
        return []
    out = []
    for start in range(0, n - LONG_STRETCH // 2, LONG_STRETCH // 2):
        mask = np.zeros(n, dtype=bool)
        mask[start : start + LONG_STRETCH] = True
        if (mask & keep).any():
            out.append(mask & keep)
    return out


def _pooled(enc: TokenEncoding, keep: np.ndarray) -> np.ndarray:
    """Mean of the kept word pieces, unit length; the sentence embedding when nothing is kept."""
    if not keep.any():
        return enc.embedding
    return _unit(enc.tokens[keep].mean(axis=0))


@dataclass(frozen=True)
class RubricContext:
    """Everything about a rubric that does not depend on the answer, computed once."""

    question_stems: frozenset[str]
    question_embedding: np.ndarray
    reference_embedding: np.ndarray
    reference_pooled_qd: np.ndarray
    reference_content_units: np.ndarray  # unit word pieces of reference content words, question words removed
    reference_units: np.ndarray
    reference_stems: frozenset[str]
    reference_words: int
    # Each key point is read in one or more phrasings: its text, then the rubric's accepted alternatives
    # (Criterion.synonyms). V phrasings for C points; groups[k] are point k's.
    criterion_pooled_qd: np.ndarray  # (V, dim)
    criterion_units: np.ndarray  # all phrasings' content word pieces stacked, unit length
    criterion_bounds: np.ndarray  # (V + 1,) row offsets into criterion_units
    weights: np.ndarray  # (C,) normalised
    polarity: tuple[PointPolarity, ...]  # (C,) each point's text read for negation, direction and role
    groups: tuple[np.ndarray, ...]  # (C,) each point's phrasing indices, its own text first
    distractors: np.ndarray  # (D, dim) unit embeddings of generic texts, then the bank's other questions' texts
    n_generic: int  # how many of the distractors are generic texts (they come first)
    reference_bigrams: frozenset[tuple[str, str]] = frozenset()  # adjacent content-word stems of the reference
    phrasing_stems: tuple[frozenset[str], ...] = ()  # (V,) each phrasing's content-word stems, question words removed


def build_context(
    question: TokenEncoding,
    reference: TokenEncoding,
    criteria: list[TokenEncoding],
    weights: list[float],
    distractors: np.ndarray | None = None,
    n_generic: int = 0,
    owners: list[int] | None = None,
) -> RubricContext:
    """The rubric side, encoded once. ``criteria`` are the phrasings of the points, ``owners[v]`` the point of
    phrasing v (default: one phrasing per point); ``weights`` has one entry per point."""
    owner = np.arange(len(criteria)) if owners is None else np.asarray(owners, dtype=int)
    q_stems = frozenset(s for s in token_stems(question) if s)
    r_stems = token_stems(reference)
    r_content = np.array([bool(s) and s not in q_stems for s in r_stems], dtype=bool)
    pooled, units, bounds = [], [], [0]
    crit_stems = [token_stems(c) for c in criteria]
    # Words shared by several key points ('training data' in two of them) say nothing about which point an
    # answer makes, so they are demoted like question words, as long as the point keeps some words of its own.
    # Phrasings of one point share words with each other by design: a word counts once per point.
    per_point: dict[int, set[str]] = {}
    for k, stems in zip(owner.tolist(), crit_stems, strict=True):
        per_point.setdefault(k, set()).update(x for x in stems if x)
    seen: dict[str, int] = {}
    for stems_of_point in per_point.values():
        for st in stems_of_point:
            seen[st] = seen.get(st, 0) + 1
    shared = {st for st, k in seen.items() if k > 1}
    for c, c_stems in zip(criteria, crit_stems, strict=True):
        content = np.array([bool(s) and s not in q_stems and s not in shared for s in c_stems], dtype=bool)
        if not content.any():
            content = np.array([bool(s) and s not in q_stems for s in c_stems], dtype=bool)
        if not content.any():  # a point made only of question words still has to be matched
            content = np.ones(c.n_tokens, dtype=bool)
        pooled.append(_pooled(c, content))
        units.append(_unit(c.tokens[content]))
        bounds.append(bounds[-1] + int(content.sum()))
    dim = reference.embedding.shape[0]
    w = np.asarray(weights, dtype=np.float64)
    roles = active_roles(question.text, reference.text)
    groups = tuple(np.flatnonzero(owner == k) for k in range(len(weights)))
    polarity = tuple(prepare_point(criteria[int(g[0])].text, q_stems, roles) for g in groups)
    return RubricContext(
        question_stems=q_stems,
        question_embedding=question.embedding,
        reference_embedding=reference.embedding,
        reference_pooled_qd=_pooled(reference, r_content),
        reference_content_units=_unit(reference.tokens[r_content]) if r_content.any() else np.zeros((0, dim)),
        reference_units=_unit(reference.tokens),
        reference_stems=frozenset(s for s, k in zip(r_stems, r_content, strict=True) if k),
        reference_words=len(word_spans(reference.text)),
        criterion_pooled_qd=np.stack(pooled) if pooled else np.zeros((0, dim)),
        criterion_units=np.vstack(units) if units else np.zeros((0, dim)),
        criterion_bounds=np.array(bounds),
        weights=w / w.sum() if len(w) and w.sum() > 0 else w,
        polarity=polarity,
        groups=groups,
        reference_bigrams=frozenset(_bigrams(r_stems)),
        phrasing_stems=tuple(frozenset(x for x in stems if x and x not in q_stems) for stems in crit_stems),
        distractors=distractors if distractors is not None else np.zeros((0, dim), dtype=np.float32),
        n_generic=n_generic if distractors is not None else 0,
    )


def answer_spans(enc: TokenEncoding, sentence_bounds: list[tuple[int, int]] | None = None) -> list[Span]:
    """The whole answer, its sentences, and sliding windows of word pieces."""
    from grader.embedding.text import sentence_spans

    n = enc.n_tokens
    if n == 0:
        return []
    spans: list[Span] = [Span(0, n)]
    starts = enc.offsets[:, 0]
    for cs, ce in sentence_bounds if sentence_bounds is not None else sentence_spans(enc.text):
        a = int(np.searchsorted(starts, cs, side="left"))
        b = int(np.searchsorted(starts, ce, side="left"))
        if b > a and (a, b) != (0, n):
            spans.append(Span(a, b))
    for w in WINDOW_SIZES:
        if n > w:
            spans.extend(Span(s, s + w) for s in range(0, n - w + 1, WINDOW_STRIDE))
            if (n - w) % WINDOW_STRIDE:
                spans.append(Span(n - w, n))
    return spans


def span_embeddings(tokens: np.ndarray, counts: np.ndarray, spans: list[Span]) -> np.ndarray:
    """Mean-pooled, unit-length span embeddings from token embeddings (no extra forward pass).

    Rows of ``tokens`` that are zeroed (with count 0) drop out of the mean; an all-dropped span is zero.
    """
    dim = tokens.shape[1]
    csum = np.vstack([np.zeros((1, dim), dtype=np.float32), np.cumsum(tokens, axis=0)])
    ccount = np.concatenate([[0.0], np.cumsum(counts)])
    starts = np.array([s.start for s in spans])
    ends = np.array([s.end for s in spans])
    n = ccount[ends] - ccount[starts]
    means = (csum[ends] - csum[starts]) / np.maximum(n, 1.0)[:, None]
    return _unit(means)


def empty_signals(ctx: RubricContext) -> dict[str, float]:
    out = dict.fromkeys(SIGNAL_NAMES, 0.0)
    out["log_len_ratio"] = math.log(1 / (ctx.reference_words + 1))
    out["topic_margin"] = -1.0
    out["statement"] = 1.0
    out["topic_margin_qd"] = out["generic_margin_qd"] = -1.0
    return out


def statement_score(stm: dict[str, float], n_words: int, lex_precision: float, ref_bigrams: float = 0.0) -> float:
    """1 for prose, falling to 0 for keyword lists (few function words) and shuffled words (class order).

    Terse answers ("push, pop and peek", "the main function") are answers, not stuffing: they keep 1. Words
    taken from the reference in an order no sentence has (a shuffled reference) fall at a milder disfluency
    than other text, since real answers that are mostly the reference's words are written in its order:
    ``ref_bigrams``, the share of the answer's content-word pairs that stand side by side in the reference too,
    tells the two apart (shuffles of a reference: ~0.09; a concise answer in the reference's words: 0.5-0.6).
    """
    if n_words < STATEMENT_MIN_WORDS:
        return 1.0
    fr = ramp(stm["function_ratio"], 0.02, 0.08)
    fl = ramp(stm["fluency"], -0.45, -0.3)
    salad = ramp(lex_precision, 0.6, 0.9) * (1.0 - ramp(stm["fluency"], -0.2, 0.0)) * (1.0 - ramp(ref_bigrams, 0.2, 0.4))
    # Mostly bare enumeration items: a keyword list, even inside a sentence frame. Answers that list their points
    # as phrases ("high compute cost, unstable training, ...") stay below ~0.3 on both interview sets.
    listed = ramp(stm.get("list_share", 0.0), 0.35, 0.6)
    # Telegraphic claims ("- removes weights / - reduces size / - speeds inference") have no function words and
    # read as disfluent, yet each item states something: they are an answer, not a keyword list.
    telegraphic = ramp(stm.get("listed_claims", 0.0), 0.5, 0.75)
    return min(max(fr, telegraphic), max(fl, telegraphic), 1.0 - salad, 1.0 - listed)


def topic_signals(answer: TokenEncoding, ctx: RubricContext) -> dict[str, float]:
    """How much closer the answer is to its own question than to the bank's other questions (and generic texts).

    An answer to another question of the bank, or about a namesake ("pruning" a tree), is closer to one of
    the distractors than to its own question and reference: ``topic_margin`` goes negative.
    """
    own = max(float(answer.embedding @ ctx.reference_embedding), float(answer.embedding @ ctx.question_embedding))
    other = float((ctx.distractors @ answer.embedding).max()) if len(ctx.distractors) else 0.0
    return {"own_topic": own, "topic_margin": own - other}


def _bigrams(stems: list[str]) -> list[tuple[str, str]]:
    """Adjacent pairs of content-word stems, from per-word-piece stems ('' for stop words and punctuation, which
    are skipped; the pieces of one word count once)."""
    words = [s for k, s in enumerate(stems) if s and (k == 0 or stems[k - 1] != s)]
    return list(itertools.pairwise(words))


def _bigram_share(stems: list[str], reference: frozenset[tuple[str, str]]) -> float:
    pairs = _bigrams(stems)
    return sum(p in reference for p in pairs) / len(pairs) if pairs else 0.0


def _phrasings(groups: tuple[np.ndarray, ...], similarity: np.ndarray) -> tuple[list[int], list[int]]:
    """Per point: the index of its own text (its first phrasing) and of its phrasing most similar to the answer
    (the first on ties, so a rubric without alternatives reads exactly as before)."""
    first = [int(g[0]) for g in groups]
    chosen = [int(g[int(np.argmax(similarity[g]))]) for g in groups]
    return first, chosen


def compute_signals(answer: TokenEncoding, ctx: RubricContext) -> tuple[dict[str, float], list[CriterionMatch]]:
    """All candidate signals for one answer, and how each key point was matched."""
    n_crit = len(ctx.weights)
    if answer.n_tokens == 0:
        return empty_signals(ctx), [CriterionMatch(0.0, 0.0, 0, 0) for _ in range(n_crit)]
    a_words = word_spans(answer.text)
    a_stems = token_stems(answer, a_words)
    # Question demoting (Sultan et al. 2016): words that already appear in the question earn nothing.
    a_keep = np.array([s not in ctx.question_stems for s in a_stems], dtype=bool)
    a_content = np.array([bool(s) for s in a_stems], dtype=bool) & a_keep
    a_units = _unit(answer.tokens)
    a_set = {s for s, k in zip(a_stems, a_content, strict=True) if k}  # the answer's content-word stems

    # Token alignment (BERTScore-style greedy matching of contextual word pieces).
    if len(ctx.reference_content_units):
        tok_recall = float((ctx.reference_content_units @ a_units.T).max(axis=1).mean())
    else:
        tok_recall = 0.0
    tok_precision = float((a_units[a_content] @ ctx.reference_units.T).max(axis=1).mean()) if a_content.any() else 0.0

    matches: list[CriterionMatch] = []
    if n_crit:
        best = (ctx.criterion_units @ a_units.T).max(axis=1)
        b = ctx.criterion_bounds
        n_var = len(ctx.criterion_bounds) - 1
        counts = np.diff(b)
        # One pass over all phrasings' pieces (a trailing 0 keeps an empty last phrasing's start in range).
        sums = np.add.reduceat(np.append(best, 0.0), b[:-1])
        var_recalls = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        spans = answer_spans(answer)
        # Spans are pooled over their content words only, so a span that merely restates the question
        # (or is all stop words) has nothing left to match a key point with.
        masked = answer.tokens * a_content[:, None]
        emb = span_embeddings(masked, a_content.astype(np.float64), spans)
        sims = emb @ ctx.criterion_pooled_qd.T  # (spans, phrasings)
        top = sims.argmax(axis=0)
        var_spans = sims[top, np.arange(n_var)]
        # Each point is matched by whichever of its phrasings the answer is closest to.
        first, chosen = _phrasings(ctx.groups, 0.5 * (var_spans + var_recalls))
        # Character spans of the phrasings that matter only: each point's own text and the one that matched.
        bounds = {v: _snap_to_words(answer.text, int(answer.offsets[spans[int(top[v])].start, 0]),
                                    int(answer.offsets[spans[int(top[v])].end - 1, 1])) for v in {*first, *chosen}}
        # Polarity is read against the point's own text only. Checking the accepted phrasings too found a few more
        # negated answers but more false contradictions of right answers in plain words ("parts that barely
        # matter" against "the connections that matter least"): worse agreement on both dev interview sets.
        checks = check_points(list(ctx.polarity), analyse(answer.text), [bounds[v] for v in first])
        for k, v in enumerate(chosen):
            start, end = bounds[v]
            ch = checks[k]
            matches.append(CriterionMatch(
                float(var_spans[v]), float(var_recalls[v]), start, end,
                contradicted=ch.stance == "contradict", contra_start=ch.start, contra_end=ch.end, cue=ch.cue,
            ))
        recalls = var_recalls[chosen]
        # The words themselves: the share of a point's words (in its closest phrasing by words) the answer uses.
        # Contextual embeddings find "remove ... samples from the data" close to "removing weights from the
        # network"; the words tell a wrong answer from a paraphrase in plain words, which uses some phrasing's words.
        lexical = np.array([max((len(ctx.phrasing_stems[v] & a_set) / len(ctx.phrasing_stems[v])
                                 for v in g if ctx.phrasing_stems[v]), default=0.0) for g in ctx.groups])
        span_sims = np.array([m.span_similarity for m in matches])
        contra = np.array([1.0 if m.contradicted else 0.0 for m in matches])
    else:
        recalls = span_sims = contra = lexical = np.zeros(0)

    a_pool = _pooled(answer, a_content) if a_content.any() else None
    cos_ref = float(answer.embedding @ ctx.reference_embedding)
    cos_q = float(answer.embedding @ ctx.question_embedding)
    w = ctx.weights
    signals = {
        "cos_ref": cos_ref,
        "cos_q": cos_q,
        "topicality": max(cos_ref, cos_q),
        "ref_minus_q": cos_ref - cos_q,
        "cos_ref_qd": float(a_pool @ ctx.reference_pooled_qd) if a_pool is not None else 0.0,
        "coverage_qd": float(span_sims @ w) if n_crit else 0.0,
        "coverage_qd_min": float(span_sims.min()) if n_crit else 0.0,
        "crit_recall_qd": float(recalls @ w) if n_crit else 0.0,
        "crit_recall_qd_min": float(recalls.min()) if n_crit else 0.0,
        "tok_recall_qd": tok_recall,
        "tok_precision_qd": tok_precision,
        "lex_recall_qd": len(a_set & ctx.reference_stems) / len(ctx.reference_stems) if ctx.reference_stems else 0.0,
        "lex_precision_qd": len(a_set & ctx.reference_stems) / len(a_set) if a_set else 0.0,
        "log_len_ratio": math.log((len(a_words) + 1) / (ctx.reference_words + 1)),
        "contradicted_weight": float(contra @ w) if n_crit else 0.0,
        "credited": float((np.array([_CREDIT.credit(m.similarity) for m in matches]) * (1 - contra)) @ w) if n_crit else 0.0,
        "crit_recall_true": float((recalls * (1 - contra)) @ w) if n_crit else 0.0,
        "point_words_true": float((lexical * (1 - contra)) @ w) if n_crit else 0.0,
        **topic_signals(answer, ctx),
    }
    stm = statement_signals(answer.text)
    signals.update(stm)
    signals["ref_bigrams"] = _bigram_share(a_stems, ctx.reference_bigrams)
    signals["statement"] = statement_score(stm, len(a_words), signals["lex_precision_qd"], signals["ref_bigrams"])
    # The same contrast on the question-demoted answer: "pruning" a tree shares the question's word, not its topic.
    if a_pool is not None and len(ctx.distractors):
        margins = [_margins(a_pool, ctx)]
        # A long answer is placed by its most on-topic stretch too: 300 words of small talk before the reference
        # must not gate the reference away (after it they did not, since the windows weigh in differently).
        margins += [_margins(_pooled(answer, keep), ctx) for keep in _stretches(a_content)]
        signals["topic_margin_qd"] = max(m for m, _ in margins)
        signals["generic_margin_qd"] = max(g for _, g in margins)
    else:
        signals["topic_margin_qd"] = signals["generic_margin_qd"] = signals["cos_ref_qd"]
    return signals, matches
