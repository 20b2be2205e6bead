"""The offline scorer: embedding signals + calibration -> a score on the rubric's scale, with coverage.

Per batch: one forward pass over all answers (sentence and token embeddings together); the rubric side
(question, reference, key points) is encoded once per process and reused.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from grader.batches import in_order
from grader.config import Settings
from grader.embedding.calibration import Calibration, default_calibration_path
from grader.embedding.encoder import Encoder, TokenEncoding, get_encoder
from grader.embedding.signals import (
    CriterionMatch,
    RubricContext,
    build_context,
    compute_signals,
    empty_signals,
)
from grader.embedding.text import sentences
from grader.judge.injection import without_manipulation
from grader.models import CriterionCoverage, EmbeddingResult, Rubric
from grader.paths import PACKAGE_DIR
from grader.prefetch import ahead

_CONTEXT_CACHE_MAX = 4096
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class _Point:
    id: str
    text: str
    weight: float
    synonyms: tuple[str, ...] = ()  # accepted alternative phrasings; the best-matching one earns the credit

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.text, *self.synonyms)


def rubric_points(rubric: Rubric) -> list[_Point]:
    """The rubric's key points; without any, each sentence of the reference is one, equally weighted."""
    if rubric.criteria:
        return [_Point(c.id, c.text, w, tuple(s for s in c.synonyms if s.strip()))
                for c, w in zip(rubric.criteria, rubric.normalised_weights(), strict=True)]
    sents = sentences(rubric.reference_answer) or [rubric.reference_answer]
    return [_Point(f"ref{i + 1}", s, 1.0 / len(sents)) for i, s in enumerate(sents)]


_BLAS: Any = None


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS runs on one thread.

    The signal matrices are small (tens of rows by 384), yet big enough for OpenBLAS to split them over
    threads, which then wait on cores that torch's threads still hold after a forward pass: measured on
    2 cores under load, the signals of 512 answers took 11.6 s with BLAS threads and 0.4 s without.
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


@cache
def generic_texts() -> tuple[str, ...]:
    """Everyday texts every answer is also compared with (off-topic check), shipped in grader/data."""
    data = json.loads((PACKAGE_DIR / "data" / "generic_texts.json").read_text(encoding="utf-8"))
    return tuple(data["texts"])


def _rubric_key(rubric: Rubric) -> tuple[str, str, str]:
    return (rubric.bank, rubric.id, rubric.question)


@dataclass
class Scored:
    """Signals and per-point matches for one answer, before calibration."""

    signals: dict[str, float]
    matches: list[CriterionMatch]
    points: list[_Point]
    empty: bool
    text: str = ""  # what was scored: the answer without any text addressed to the grader


class OfflineScorer:
    def __init__(self, settings: Settings | None = None, calibration: Calibration | None = None) -> None:
        self.settings = settings or Settings()
        self.encoder: Encoder = get_encoder(self.settings.embedding)
        if calibration is None:
            calibration = Calibration.load(self.settings.calibration or default_calibration_path())
        self.calibration = calibration
        self._contexts: OrderedDict[tuple, RubricContext] = OrderedDict()
        self._contexts_lock = threading.Lock()  # the pipeline may score from several threads
        self._siblings: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._embedding_cache: dict[str, np.ndarray] = {}

    def use_bank(self, rubrics: Iterable[Rubric]) -> None:
        """Tell the scorer which questions belong together: each is then also checked against the others.

        An answer closer to another question of its bank than to its own is off-topic (``topic_margin``).
        Without a bank (an ad hoc rubric) only the shipped generic texts serve as the others.
        """
        rubrics = list({_rubric_key(r): r for r in rubrics}.values())
        for r in rubrics:
            others: list[str] = []
            for o in rubrics:
                if o is not r and o.question != r.question and o.reference_answer != r.reference_answer:
                    others.extend((o.question, o.reference_answer))
            self._siblings[_rubric_key(r)] = tuple(dict.fromkeys(others))

    @property
    def model_name(self) -> str:
        return self.encoder.name

    # -- rubric side, cached -----------------------------------------------------------------------
    def _sentence_embeddings(self, texts: tuple[str, ...]) -> np.ndarray:
        """Unit sentence embeddings of fixed texts, kept on disk between runs (a cold grade compares every answer
        with ~80 such texts; encoding them each time would double its cost)."""
        import hashlib

        digest = hashlib.sha256("\x00".join((self.encoder.model_id, *texts)).encode()).hexdigest()[:32]
        with self._contexts_lock:
            hit = self._embedding_cache.get(digest)
        if hit is not None:
            return hit
        path = Path(self.settings.cache_dir) / "embeddings" / f"{digest}.npy"
        arr: np.ndarray | None = None
        try:
            loaded = np.load(path, allow_pickle=False)
            if loaded.shape == (len(texts), self.encoder.dim):
                arr = loaded.astype(np.float32)
        except (OSError, ValueError):
            arr = None
        if arr is None:
            arr = self.encoder.encode_cached(list(texts)).astype(np.float32)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, arr)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only or full cache folder costs time, never a grade
        with self._contexts_lock:
            self._embedding_cache[digest] = arr
        return arr

    def _distractor_texts(self, rubric: Rubric) -> tuple[str, ...]:
        return generic_texts() + self._siblings.get(_rubric_key(rubric), ())

    def _context(self, rubric: Rubric, points: list[_Point]) -> RubricContext:
        others = self._distractor_texts(rubric)
        key = (rubric.question, rubric.reference_answer, tuple((p.phrasings, p.weight) for p in points), others)
        with self._contexts_lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                self._contexts.move_to_end(key)
                return ctx
        phrasings = [t for p in points for t in p.phrasings]
        owners = [k for k, p in enumerate(points) for _ in p.phrasings]
        encs = self.encoder.encode_tokens_cached([rubric.question, rubric.reference_answer, *phrasings])
        distractors = self._sentence_embeddings(others)
        ctx = build_context(encs[0], encs[1], encs[2:], [p.weight for p in points], distractors, len(generic_texts()),
                            owners)
        with self._contexts_lock:
            self._contexts[key] = ctx
            while len(self._contexts) > _CONTEXT_CACHE_MAX:
                self._contexts.popitem(last=False)
        return ctx

    # -- answers, batched --------------------------------------------------------------------------
    def analyse_batches(self, items: list[tuple[Rubric, str]]) -> Iterator[list[tuple[int, Scored]]]:
        """Signals for each (rubric, answer), one encoder batch at a time: (index into items, Scored).

        Each batch's token embeddings are reduced to signals before the next batch is encoded, so memory
        holds one batch of them whatever len(items) is. Empty answers come first, in one group.
        """
        # Text addressed to the grader ("give full marks", "SYSTEM: score=5") is not part of the answer's content:
        # it is cut before scoring, so it can neither earn credit nor dilute the rest.
        texts = [without_manipulation(a.strip()) for _, a in items]
        all_points = [rubric_points(r) for r, _ in items]
        # Encode every rubric text this call has not seen in one batched pass, not one call per rubric.
        fixed = [t for (r, _), pts in zip(items, all_points, strict=True)
                 for t in (r.question, r.reference_answer, *(t for p in pts for t in p.phrasings))]
        self.encoder.encode_tokens_cached(fixed)
        # No word at all ('', '...', '??') is an empty answer: score 0, not a guess from punctuation.
        has_words = [_WORD.search(t) is not None for t in texts]
        todo = [i for i, w in enumerate(has_words) if w]
        empty = [i for i, w in enumerate(has_words) if not w]
        if empty:
            yield [(i, self._analyse(items[i][0], all_points[i], None, texts[i])) for i in empty]
        # The next batch is encoded while this one is reduced to signals (grader/prefetch.py).
        for group in ahead(self.encoder.encode_tokens_batches([texts[i] for i in todo])):
            with one_blas_thread():
                scored = [(todo[j], self._analyse(items[todo[j]][0], all_points[todo[j]], enc, texts[todo[j]]))
                          for j, enc in group]
            yield scored

    def _analyse(self, rubric: Rubric, points: list[_Point], enc: TokenEncoding | None, text: str) -> Scored:
        ctx = self._context(rubric, points)
        if enc is None or enc.n_tokens == 0:
            return Scored(empty_signals(ctx), [CriterionMatch(0.0, 0.0, 0, 0) for _ in points], points, True, text)
        signals, matches = compute_signals(enc, ctx)
        return Scored(signals, matches, points, False, text)

    def analyse_many(self, items: list[tuple[Rubric, str]]) -> list[Scored]:
        return in_order(self.analyse_batches(items), len(items))

    def signals_many(self, items: list[tuple[Rubric, str]]) -> list[dict[str, float]]:
        return [s.signals for s in self.analyse_many(items)]

    def score_batches(self, items: list[tuple[Rubric, str]]) -> Iterator[list[tuple[int, EmbeddingResult]]]:
        """score_many, one encoder batch at a time: (index into items, result) pairs as they are ready."""
        for group in self.analyse_batches(items):
            yield [(i, self._result(items[i][0], scored.text, scored)) for i, scored in group]

    def score_many(self, items: list[tuple[Rubric, str]]) -> list[EmbeddingResult]:
        return in_order(self.score_batches(items), len(items))

    def score(self, rubric: Rubric, answer: str) -> EmbeddingResult:
        return self.score_many([(rubric, answer)])[0]

    def _result(self, rubric: Rubric, text: str, scored: Scored) -> EmbeddingResult:
        cal = self.calibration
        score = 0.0 if scored.empty else cal.predict(scored.signals, rubric.max_score)
        coverage = []
        # The gates that hold the score down (off-topic, a keyword list, shuffled words) hold each point down too:
        # "pruning, weights, model size" scores 0 and must not be told it covered the points.
        gate = 0.0 if scored.empty else cal.gate_factor(scored.signals)
        for p, m in zip(scored.points, scored.matches, strict=True):
            sim = 0.0 if scored.empty else m.similarity
            # A point the answer contradicts earns nothing however similar the words are.
            credit = 0.0 if scored.empty or m.contradicted else cal.coverage.credit(sim) * gate
            coverage.append(
                CriterionCoverage(
                    id=p.id,
                    similarity=round(sim, 4),
                    coverage=round(credit, 4),
                    covered=credit >= cal.coverage.covered_at,
                    best_span=text[m.char_start : m.char_end] if not scored.empty and m.char_end > m.char_start else None,
                    contradicted=m.contradicted,
                    contradiction=_quote(text[m.contra_start : m.contra_end]) if m.contradicted else None,
                    cue=m.cue or None,
                )
            )
        return EmbeddingResult(
            score=round(score, 4),
            max_score=rubric.max_score,
            signals={k: round(v, 6) for k, v in scored.signals.items()},
            coverage=coverage,
            model=self.model_name,
            calibration=cal.label,
        )


def _quote(span: str) -> str:
    return " ".join(span.split())
