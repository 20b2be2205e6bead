"""The offline scorer: embedding signals + calibration -> a score on the rubric's scale, with coverage.

Per batch: one forward pass over all answers (sentence and token embeddings together); the rubric side
(question, reference, key points) is encoded once per process and reused.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

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
from grader.models import CriterionCoverage, EmbeddingResult, Rubric

_CONTEXT_CACHE_MAX = 4096
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class _Point:
    id: str
    text: str
    weight: float


def rubric_points(rubric: Rubric) -> list[_Point]:
    """The rubric's key points; without any, each sentence of the reference is one, equally weighted."""
    if rubric.criteria:
        return [_Point(c.id, c.text, w) for c, w in zip(rubric.criteria, rubric.normalised_weights(), strict=True)]
    sents = sentences(rubric.reference_answer) or [rubric.reference_answer]
    return [_Point(f"ref{i + 1}", s, 1.0 / len(sents)) for i, s in enumerate(sents)]


@dataclass
class Scored:
    """Signals and per-point matches for one answer, before calibration."""

    signals: dict[str, float]
    matches: list[CriterionMatch]
    points: list[_Point]
    empty: bool


class OfflineScorer:
    def __init__(self, settings: Settings | None = None, calibration: Calibration | None = None) -> None:
        self.settings = settings or Settings()
        self.encoder: Encoder = get_encoder(self.settings.embedding)
        if calibration is None:
            calibration = Calibration.load(self.settings.calibration or default_calibration_path())
        self.calibration = calibration
        self._contexts: OrderedDict[tuple, RubricContext] = OrderedDict()
        self._contexts_lock = threading.Lock()  # the pipeline may score from several threads

    @property
    def model_name(self) -> str:
        return self.encoder.name

    # -- rubric side, cached -----------------------------------------------------------------------
    def _context(self, rubric: Rubric, points: list[_Point]) -> RubricContext:
        key = (rubric.question, rubric.reference_answer, tuple((p.text, p.weight) for p in points))
        with self._contexts_lock:
            ctx = self._contexts.get(key)
            if ctx is not None:
                self._contexts.move_to_end(key)
                return ctx
        encs = self.encoder.encode_tokens_cached([rubric.question, rubric.reference_answer, *(p.text for p in points)])
        ctx = build_context(encs[0], encs[1], encs[2:], [p.weight for p in points])
        with self._contexts_lock:
            self._contexts[key] = ctx
            while len(self._contexts) > _CONTEXT_CACHE_MAX:
                self._contexts.popitem(last=False)
        return ctx

    # -- answers, batched --------------------------------------------------------------------------
    def analyse_many(self, items: list[tuple[Rubric, str]]) -> list[Scored]:
        texts = [a.strip() for _, a in items]
        # No word at all ('', '...', '??') is an empty answer: score 0, not a guess from punctuation.
        todo = [i for i, t in enumerate(texts) if _WORD.search(t)]
        encoded: dict[int, TokenEncoding] = dict(
            zip(todo, self.encoder.encode_tokens([texts[i] for i in todo]), strict=True)
        )
        all_points = [rubric_points(r) for r, _ in items]
        # Encode every rubric text this batch has not seen in one batched pass, not one call per rubric.
        fixed = [t for (r, _), pts in zip(items, all_points, strict=True)
                 for t in (r.question, r.reference_answer, *(p.text for p in pts))]
        self.encoder.encode_tokens_cached(fixed)
        out: list[Scored] = []
        for i, (rubric, _) in enumerate(items):
            points = all_points[i]
            ctx = self._context(rubric, points)
            enc = encoded.get(i)
            if enc is None or enc.n_tokens == 0:
                out.append(Scored(empty_signals(ctx), [CriterionMatch(0.0, 0.0, 0, 0) for _ in points], points, True))
                continue
            signals, matches = compute_signals(enc, ctx)
            out.append(Scored(signals, matches, points, False))
        return out

    def signals_many(self, items: list[tuple[Rubric, str]]) -> list[dict[str, float]]:
        return [s.signals for s in self.analyse_many(items)]

    def score_many(self, items: list[tuple[Rubric, str]]) -> list[EmbeddingResult]:
        texts = [a.strip() for _, a in items]
        return [
            self._result(rubric, text, scored)
            for (rubric, _), text, scored in zip(items, texts, self.analyse_many(items), strict=True)
        ]

    def score(self, rubric: Rubric, answer: str) -> EmbeddingResult:
        return self.score_many([(rubric, answer)])[0]

    def _result(self, rubric: Rubric, text: str, scored: Scored) -> EmbeddingResult:
        cal = self.calibration
        score = 0.0 if scored.empty else cal.predict(scored.signals, rubric.max_score)
        coverage = []
        for p, m in zip(scored.points, scored.matches, strict=True):
            sim = 0.0 if scored.empty else m.similarity
            credit = 0.0 if scored.empty else cal.coverage.credit(sim)
            coverage.append(
                CriterionCoverage(
                    id=p.id,
                    similarity=round(sim, 4),
                    coverage=round(credit, 4),
                    covered=credit >= cal.coverage.covered_at,
                    best_span=text[m.char_start : m.char_end] if not scored.empty and m.char_end > m.char_start else None,
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
