"""`Grader`: the Python API. Rubric lookup, offline scorer, optional judge, combination, feedback.

    from grader import Grader
    g = Grader()                                   # settings from grader.toml / GRADER_* / defaults
    r = g.grade("Pruning removes weights ...", question_id="easy-2")
    print(r.score, r.feedback.text)

The scorer and the judge are created on first use, so building a Grader is cheap.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from grader.batches import in_order
from grader.config import Settings, load_settings
from grader.errors import InputError
from grader.models import (
    EmbeddingResult,
    GradeError,
    GradeResult,
    JudgeResult,
    Question,
    ReviewReason,
    Rubric,
)
from grader.pipeline.combine import combine, judge_warning
from grader.pipeline.feedback import compose_feedback

DEFAULT_MAX_ANSWER_CHARS = 20_000

# One item for grade_many: (question id or Rubric, answer).
Item = tuple[str | Rubric, str]
JudgeName = Literal["none", "openai", "langchain"]


def check_answer(answer: str | None, max_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> str:
    """The answer, or InputError when it cannot be graded (empty or over the length limit)."""
    if answer is None or not answer.strip():
        raise InputError("empty answer", field="answer")
    if max_chars and len(answer) > max_chars:
        raise InputError(f"answer too long ({len(answer)} chars > {max_chars})", field="answer")
    return answer


def adhoc_rubric(question: str, reference: str, max_score: float = 5.0) -> Rubric:
    """A rubric built on the spot from a question and its reference answer (id 'adhoc')."""
    from grader.rubric.deterministic import build_rubric

    try:
        q = Question(id="adhoc", question=question, reference_answer=reference, max_score=max_score)
    except ValueError as e:
        raise InputError("--question and --reference must both be non-empty", field="question") from e
    return build_rubric(q)


class Grader:
    """Grades answers against rubrics. Thread-compatible for reads; create one per process and reuse it."""

    def __init__(
        self,
        settings: Settings | None = None,
        rubrics_dir: str | Path | None = None,
        *,
        max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.rubrics_dir = self._pick_rubrics_dir(rubrics_dir)
        self.max_answer_chars = max_answer_chars
        self._rubrics: dict[str, Rubric | InputError] = {}
        self._banks: dict[Path, list[Rubric]] = {}
        self._pending_banks: list[list[Rubric]] = []
        self._scorer: Any = None
        self._judge: Any = None
        self._judge_made = False

    def _pick_rubrics_dir(self, rubrics_dir: str | Path | None) -> Path:
        if rubrics_dir is not None:
            return Path(rubrics_dir)
        configured = Path(self.settings.rubrics_dir)
        if configured == Path("rubrics") and not configured.is_dir():
            # Run from outside the repository: use the rubrics shipped with it.
            from grader.paths import default_rubrics_dir

            return default_rubrics_dir()
        return configured

    # -- components ----------------------------------------------------------------------------
    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            # Model loading prints progress bars and library notices; a grade's output should not.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from grader.embedding.scorer import OfflineScorer

            self._scorer = OfflineScorer(self.settings)
            self._flush_banks()
        return self._scorer

    @property
    def judge(self) -> Any:
        """The judge, or None when the backend resolves to none (offline)."""
        if not self._judge_made:
            if self.settings.judge.backend == "none":
                self._judge = None
            else:
                from grader.judge import make_judge

                self._judge = make_judge(self.settings)
            self._judge_made = True
        return self._judge

    @property
    def judge_used(self) -> JudgeName:
        judge = self.judge
        if judge is None:
            return "none"
        backend = getattr(judge, "backend", None) or self.settings.judge.backend
        return "langchain" if backend == "langchain" else "openai"

    def describe_judge(self) -> str:
        """One line saying which judge grades, for people reading the output."""
        judge = self.judge
        if judge is None:
            why = ""
            if self.settings.judge.backend == "auto":
                why = "; no judge endpoint configured"
            return f"none (offline{why})"
        model = getattr(judge, "model", None) or self.settings.judge.model or self.settings.judge.provider
        return f"{self.judge_used} model {model}"

    # -- rubrics -------------------------------------------------------------------------------
    def rubric(self, question_id: str) -> Rubric:
        """The rubric for a question id; unknown ids raise InputError (and are remembered as unknown)."""
        cached = self._rubrics.get(question_id)
        if cached is None:
            from grader.rubric.store import find_rubric_path, load_rubric

            try:
                path = find_rubric_path(self.rubrics_dir, question_id)
                cached = load_rubric(path)
                self._use_bank_of(path)
            except InputError as e:
                cached = e
            self._rubrics[question_id] = cached
        if isinstance(cached, InputError):
            raise InputError(cached.message, file=cached.file, line=cached.line, field="question_id")
        return cached

    def _use_bank_of(self, path: Path) -> None:
        """The rubrics beside this one form its bank: the scorer checks answers against the others too."""
        folder = path.parent
        if folder in self._banks:
            return
        from grader.rubric.store import load_bank_quickly

        # One broken sibling file must not stop grading; it is left out, and only narrows the off-topic check.
        bank = load_bank_quickly(folder)
        self._banks[folder] = bank
        self.use_bank(bank)

    def use_bank(self, rubrics: Sequence[Rubric]) -> None:
        """Declare which rubrics belong together (an answer to one of them is off-topic for the others)."""
        if rubrics:
            self._pending_banks.append(list(rubrics))
            if self._scorer is not None:
                self._flush_banks()

    def _flush_banks(self) -> None:
        while self._pending_banks:
            self._scorer.use_bank(self._pending_banks.pop(0))

    def _resolve(self, question_id: str | None, rubric: Rubric | None) -> Rubric:
        if rubric is not None:
            return rubric
        if question_id is None:
            raise InputError("give a question id or a rubric", field="question_id")
        return self.rubric(question_id)

    def _item(self, item: Item | dict[str, Any]) -> tuple[Rubric, str] | GradeError:
        """The item's rubric and answer, or a GradeError saying why it cannot be graded."""
        if isinstance(item, dict):
            rub = item.get("rubric")
            q, a = (rub if rub is not None else item.get("question_id")), item.get("answer")
        elif isinstance(item, tuple | list) and len(item) == 2:
            q, a = item
        else:
            return GradeError(error=f"not a (question id, answer) pair: {item!r:.80}")
        qid = q.id if isinstance(q, Rubric) else q if isinstance(q, str) else None
        if a is not None and not isinstance(a, str):
            return GradeError(question_id=qid, error=f"answer: not text but {type(a).__name__}")
        try:
            rubric = q if isinstance(q, Rubric) else self._resolve(q, None)
            return rubric, check_answer(a, self.max_answer_chars)
        except InputError as e:
            return GradeError(question_id=qid, error=str(e))

    # -- assembling one result -------------------------------------------------------------------
    def _warnings(self, answer: str) -> list[str]:
        # The judge layer owns injection detection; offline grades carry the same warnings.
        from grader.judge.injection import suspicious

        return list(suspicious(answer))

    def finish(
        self,
        rubric: Rubric,
        answer: str,
        embedding: EmbeddingResult | None,
        judge: JudgeResult | None,
        elapsed_ms: float | None = None,
    ) -> GradeResult:
        """Combine the components into a GradeResult (public so the evaluation harness can re-derive)."""
        fallback = self.settings.judge.fallback
        out = combine(embedding, judge, rubric, self.settings.combine, fallback=fallback)
        warnings = self._warnings(answer)
        jw = judge_warning(judge, fallback)
        if jw:
            warnings.insert(0, jw)
        feedback = compose_feedback(
            out.criteria,
            out.score,
            rubric.max_score,
            judge_feedback=judge.feedback if judge is not None and judge.status == "scored" else "",
            unscored_reason=jw if out.status == "unscored" else None,
        )
        result = GradeResult(
            question_id=rubric.id,
            score=out.score,
            max_score=rubric.max_score,
            status=out.status,
            judge_used=self.judge_used if judge is not None else "none",
            criteria=out.criteria,
            feedback=feedback,
            embedding=embedding,
            judge=judge,
            combination=out.combination,
            warnings=warnings,
            elapsed_ms=round(elapsed_ms, 2) if elapsed_ms is not None else None,
        )
        result.confidence, result.review = self._assess(result, answer)
        return result

    def _assess(self, result: GradeResult, answer: str) -> tuple[float | None, list[ReviewReason]]:
        from grader.pipeline.confidence import assess, load_model

        cs = self.settings.confidence
        model = load_model(str(cs.model) if cs.model is not None else None)
        return assess(result, answer, model, cs, self.max_answer_chars)

    # -- sync API ------------------------------------------------------------------------------
    def grade(self, answer: str, question_id: str | None = None, rubric: Rubric | None = None) -> GradeResult:
        """Grade one answer. Raises InputError for an unknown question or an empty/over-long answer."""
        rub = self._resolve(question_id, rubric)
        answer = check_answer(answer, self.max_answer_chars)
        scorer, judge = self.scorer, self.judge  # loaded before the clock: elapsed is grading time
        t0 = time.perf_counter()
        emb = scorer.score(rub, answer)
        jr = judge.judge(rub, answer) if judge is not None else None
        return self.finish(rub, answer, emb, jr, (time.perf_counter() - t0) * 1000)

    def grade_many(self, items: Iterable[Item | dict[str, Any]]) -> list[GradeResult | GradeError]:
        """Grade many answers: one batched encoding pass; judge calls run concurrently when a judge is used.

        Items are (question_id or Rubric, answer) pairs or dicts with question_id/rubric and answer. Returns one
        result per item, in order; an item that cannot be graded (unknown question id, empty or over-long answer)
        gets a GradeError (status "error", `error` says why) and the others are graded, as in `grader batch`.
        """
        prepared = [self._item(i) for i in items]
        good = [(k, p) for k, p in enumerate(prepared) if not isinstance(p, GradeError)]
        pairs = [p for _, p in good]
        graded = asyncio.run(self._agrade_pairs(pairs)) if self.judge is not None else self._grade_pairs_offline(pairs)
        return _merge(prepared, good, graded)

    def _grade_pairs_offline(self, pairs: Sequence[tuple[Rubric, str]]) -> list[GradeResult]:
        return in_order(self.grade_offline_batches(pairs), len(pairs))

    def grade_offline_batches(self, pairs: Sequence[tuple[Rubric, str]]) -> Iterator[list[tuple[int, GradeResult]]]:
        """Offline grades one encoder batch at a time, as (index into pairs, result), for streaming callers."""
        t0 = time.perf_counter()
        for group in self.scorer.score_batches(list(pairs)):
            t1 = time.perf_counter()
            each = (t1 - t0) * 1000 / max(len(group), 1)
            yield [(i, self.finish(pairs[i][0], pairs[i][1], e, None, each)) for i, e in group]
            t0 = time.perf_counter()

    # -- async API -----------------------------------------------------------------------------
    async def agrade(
        self, answer: str, question_id: str | None = None, rubric: Rubric | None = None
    ) -> GradeResult:
        """Grade one answer without blocking the event loop (encoding runs in a worker thread)."""
        t0 = time.perf_counter()
        rub = self._resolve(question_id, rubric)
        answer = check_answer(answer, self.max_answer_chars)
        emb = await asyncio.to_thread(self.scorer.score, rub, answer)
        jr = await self.judge.ajudge(rub, answer) if self.judge is not None else None
        return self.finish(rub, answer, emb, jr, (time.perf_counter() - t0) * 1000)

    async def agrade_many(
        self,
        items: Iterable[Item | dict[str, Any]],
        on_result: Callable[[int, GradeResult], None] | None = None,
    ) -> list[GradeResult | GradeError]:
        """Grade many answers; at most settings.judge.concurrency judge calls are in flight.

        Like `grade_many`, bad items become GradeErrors in place. `on_result(index, result)` is called as each
        grade completes (in completion order; index into `items`), which lets a caller stream results to disk.
        """
        prepared = [self._item(i) for i in items]
        good = [(k, p) for k, p in enumerate(prepared) if not isinstance(p, GradeError)]
        callback = None if on_result is None else (lambda j, r: on_result(good[j][0], r))
        graded = await self._agrade_pairs([p for _, p in good], callback)
        return _merge(prepared, good, graded)

    async def _agrade_pairs(
        self,
        pairs: Sequence[tuple[Rubric, str]],
        on_result: Callable[[int, GradeResult], None] | None = None,
    ) -> list[GradeResult]:
        if not pairs:
            return []
        t0 = time.perf_counter()
        embs: list[EmbeddingResult] = await asyncio.to_thread(self.scorer.score_many, list(pairs))
        embed_ms = (time.perf_counter() - t0) * 1000 / len(pairs)
        judge = self.judge
        results: list[GradeResult | None] = [None] * len(pairs)
        if judge is None:
            for i, ((r, a), e) in enumerate(zip(pairs, embs, strict=True)):
                results[i] = self.finish(r, a, e, None, embed_ms)
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
            return results  # type: ignore[return-value]
        sem = asyncio.Semaphore(self.settings.judge.concurrency)

        async def one(i: int) -> None:
            rub, ans = pairs[i]
            async with sem:
                t1 = time.perf_counter()
                jr = await judge.ajudge(rub, ans)
            res = self.finish(rub, ans, embs[i], jr, embed_ms + (time.perf_counter() - t1) * 1000)
            results[i] = res
            if on_result is not None:
                on_result(i, res)

        await asyncio.gather(*(one(i) for i in range(len(pairs))))
        return results  # type: ignore[return-value]


def _merge(
    prepared: Sequence[tuple[Rubric, str] | GradeError],
    good: Sequence[tuple[int, tuple[Rubric, str]]],
    graded: Sequence[GradeResult],
) -> list[GradeResult | GradeError]:
    """Each item's result at its place: the grade of a good item, the GradeError of a bad one."""
    by_index = dict(zip((k for k, _ in good), graded, strict=True))
    return [p if isinstance(p, GradeError) else by_index[k] for k, p in enumerate(prepared)]
