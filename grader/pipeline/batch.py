"""`grader batch`: stream an answer file, grade it window by window, append one record per input row.

Memory stays flat: rows are read one at a time into windows of `chunk_size` rows; a window is tokenised
and sorted by length (little padding), then encoded one encoder batch at a time, and each batch's
records are appended as soon as it is graded. With a judge, at most a bounded number of judge calls are
in flight. So `--resume` after a crash or kill -9 grades only the rows whose records are missing.
Records may be out of input order; each carries `line` and `id`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import InputError
from grader.models import GradeResult, Rubric
from grader.pipeline.batch_io import OUTPUT_FIELDS, Columns, InputRow, RecordWriter, detect_format, read_rows
from grader.pipeline.grader import Grader, check_answer
from grader.pipeline.resume import ResumeState, load_resume_state
from grader.pipeline.review import ReviewTally

# Rows read ahead and sorted by token count before encoding: a wider window pads less (2,048 rows pad
# ~20% fewer tokens than 512 on the benchmark file). Memory does not grow with it: each encoder batch
# is reduced to signals and written out before the next one runs.
DEFAULT_CHUNK = 2048
Progress = Callable[[int, "BatchSummary"], None]  # (bytes of input consumed, running summary)


@dataclass
class BatchOptions:
    input: Path
    output: Path
    columns: Columns = field(default_factory=Columns)
    input_format: str | None = None
    resume: bool = False
    force: bool = False
    full: bool = False
    chunk_size: int = DEFAULT_CHUNK
    review: ReviewTally | None = None  # counts flagged grades by reason; writes --review-out


@dataclass
class BatchSummary:
    rows: int = 0  # records written by this run
    graded: int = 0
    fallback: int = 0
    unscored: int = 0
    errors: int = 0
    skipped: int = 0  # rows already in OUTPUT (resume)
    score_sum: float = 0.0
    max_score: float | None = None
    histogram: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time while grading: a shared machine's load does not inflate it
    torn_bytes: int = 0
    error_lines: list[int] = field(default_factory=list)  # first few, for the summary

    @property
    def scored(self) -> int:
        return self.graded + self.fallback

    @property
    def mean_score(self) -> float | None:
        return round(self.score_sum / self.scored, 4) if self.scored else None

    @property
    def rate(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, record: dict[str, Any], result: GradeResult | None) -> None:
        self.rows += 1
        if record.get("error") is not None:
            self.errors += 1
            if len(self.error_lines) < 20:
                self.error_lines.append(int(record["line"]))
            return
        assert result is not None
        status = result.status
        if status == "graded":
            self.graded += 1
        elif status == "fallback":
            self.fallback += 1
        else:
            self.unscored += 1
        if result.score is not None:
            self.score_sum += result.score
            self.max_score = result.max_score
            # Five equal bins of the score range: [0,1) [1,2) ... [4,5] for a 5-point scale.
            width = result.max_score / 5
            b = min(int(result.score / width), 4) if width > 0 else 0
            key = f"{b * width:g}-{(b + 1) * width:g}"
            self.histogram[key] = self.histogram.get(key, 0) + 1
        if result.judge is not None:
            u = result.judge.usage
            self.prompt_tokens += u.prompt_tokens
            self.completion_tokens += u.completion_tokens
            if u.cost_usd is not None:
                self.cost_usd = (self.cost_usd or 0.0) + u.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "graded": self.graded,
            "fallback": self.fallback,
            "unscored": self.unscored,
            "errors": self.errors,
            "skipped_already_done": self.skipped,
            "mean_score": self.mean_score,
            "max_score": self.max_score,
            "distribution": dict(sorted(self.histogram.items(), key=lambda kv: float(kv[0].split("-")[0]))),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "elapsed_s": round(self.elapsed_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "rows_per_s": round(self.rate, 2),
            "error_lines": self.error_lines,
        }


# -------------------------------------------------------------------------------------------- records


def _libc_trim() -> Callable[[], None]:
    """glibc's malloc_trim: hand freed heap pages back to the OS between chunks.

    Torch's CPU kernels allocate large temporaries per batch from several malloc arenas; without a trim
    the freed pages stay in the process and RSS creeps up with the longest batch seen so far.
    """
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0) and None


release_memory = _libc_trim()


def result_record(row: InputRow, result: GradeResult, full: bool = False) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": row.id,
        "line": row.line,
        "question_id": row.question_id,
        "score": result.score,
        "max_score": result.max_score,
        "status": result.status,
        "judge_used": result.judge_used,
        "feedback": result.feedback.text,
        "criteria": [
            {"id": c.id, "status": c.status, "credit": c.credit, "coverage": c.coverage, "verdict": c.verdict}
            for c in result.criteria
        ],
        "error": None,
        "warnings": result.warnings,
        "confidence": result.confidence,
        "review": [r.model_dump() for r in result.review],
    }
    if full:
        rec["result"] = result.model_dump(mode="json")
    return rec


def error_record(row: InputRow, message: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "line": row.line,
        "question_id": row.question_id,
        "score": None,
        "max_score": None,
        "status": "error",
        "judge_used": None,
        "feedback": None,
        "criteria": None,
        "error": message,
        "warnings": [],
        "confidence": None,
        "review": [],
    }


# ---------------------------------------------------------------------------------------------- run


def prepare_output(opts: BatchOptions) -> tuple[str, ResumeState]:
    """Check INPUT/OUTPUT, refuse to overwrite without --force, and read what --resume continues."""
    if not opts.input.is_file():
        raise InputError("no such input file", file=opts.input)
    out_fmt = detect_format(opts.output)
    if opts.output.exists() and opts.output.resolve() == opts.input.resolve():
        raise InputError("OUTPUT is the INPUT file", file=opts.output)
    state = ResumeState()
    if opts.output.exists() and opts.output.stat().st_size > 0:
        if opts.resume:
            state = load_resume_state(opts.output, out_fmt)  # type: ignore[arg-type]
        elif opts.force:
            opts.output.unlink()
        else:
            raise InputError(
                "OUTPUT exists; use --resume to continue it or --force to replace it", file=opts.output
            )
    return out_fmt, state


class _Run:
    def __init__(self, grader: Grader, opts: BatchOptions, progress: Progress | None) -> None:
        self.grader = grader
        self.opts = opts
        self.progress = progress
        self.summary = BatchSummary()
        self.offset = 0
        self.t0 = time.perf_counter()

    def rows(self, state: ResumeState) -> Iterator[InputRow]:
        fmt = detect_format(self.opts.input, self.opts.input_format)
        for row in read_rows(self.opts.input, self.opts.columns, fmt):
            self.offset = row.offset
            if row.line in state:
                state.check(row.line, row.id, self.opts.output)
                self.summary.skipped += 1
                continue
            yield row

    def validate(self, row: InputRow) -> tuple[Rubric, str] | str:
        """The (rubric, answer) to grade, or the error message for the record."""
        if row.error is not None:
            return row.error
        try:
            assert row.question_id is not None
            rubric = self.grader.rubric(row.question_id)
            answer = check_answer(row.answer, self.grader.max_answer_chars)
        except InputError as e:
            return e.message
        return rubric, answer

    def chunks(self, state: ResumeState) -> Iterator[tuple[list[dict[str, Any]], list[tuple[InputRow, Rubric, str]]]]:
        """(error records, rows to grade), at most chunk_size rows to grade per chunk."""
        errors: list[dict[str, Any]] = []
        todo: list[tuple[InputRow, Rubric, str]] = []
        for row in self.rows(state):
            v = self.validate(row)
            if isinstance(v, str):
                errors.append(error_record(row, v))
            else:
                todo.append((row, v[0], v[1]))
            if len(todo) >= self.opts.chunk_size or len(errors) >= self.opts.chunk_size:
                yield errors, todo
                errors, todo = [], []
        if errors or todo:
            yield errors, todo

    def record(self, row: InputRow, rubric: Rubric, answer: str, res: GradeResult) -> dict[str, Any]:
        if self.opts.review is not None:
            self.opts.review.add(row, rubric, res)
        return result_record(row, res, self.opts.full)

    def emit(self, writer: RecordWriter, records: list[tuple[dict[str, Any], GradeResult | None]]) -> None:
        writer.write([r for r, _ in records])
        for rec, res in records:
            self.summary.add(rec, res)
        self.summary.elapsed_s = time.perf_counter() - self.t0
        if self.progress is not None:
            self.progress(self.offset, self.summary)

    def grade_offline(self, writer: RecordWriter, todo: list[tuple[InputRow, Rubric, str]]) -> None:
        """Grade one window, appending each encoder batch's records as soon as that batch is done."""
        pending = dict(enumerate(todo))
        try:
            for group in self.grader.grade_offline_batches([(rub, ans) for _, rub, ans in todo]):
                records = []
                for i, res in sorted(group, key=lambda g: pending[g[0]][0].line):
                    row, rub, ans = pending.pop(i)
                    records.append((self.record(row, rub, ans, res), res))
                self.emit(writer, records)
        except Exception:
            # One row the scorer cannot handle must not sink the window: grade what is left one by one.
            for row, rub, ans in pending.values():
                try:
                    res = self.grader._grade_pairs_offline([(rub, ans)])[0]
                    rec: tuple[dict[str, Any], GradeResult | None] = (self.record(row, rub, ans, res), res)
                except Exception as e:
                    rec = (error_record(row, f"cannot grade: {type(e).__name__}: {e}"), None)
                self.emit(writer, [rec])

    def run_offline(self, writer: RecordWriter, state: ResumeState) -> None:
        for errors, todo in self.chunks(state):
            if errors:
                self.emit(writer, [(e, None) for e in errors])
            if todo:
                self.grade_offline(writer, todo)
            release_memory()

    async def run_judged(self, writer: RecordWriter, state: ResumeState) -> None:
        judge = self.grader.judge
        conc = self.grader.settings.judge.concurrency
        sem = asyncio.Semaphore(conc)
        inflight: set[asyncio.Task[None]] = set()

        async def one(row: InputRow, rub: Rubric, ans: str, emb: Any, t0: float) -> None:
            try:
                async with sem:
                    jr = await judge.ajudge(rub, ans)
                res = self.grader.finish(rub, ans, emb, jr, (time.perf_counter() - t0) * 1000)
            except Exception as e:  # the judge should not raise; if it does, the row still gets a record
                self.emit(writer, [(error_record(row, f"cannot grade: {type(e).__name__}: {e}"), None)])
                return
            self.emit(writer, [(self.record(row, rub, ans, res), res)])

        for errors, todo in self.chunks(state):
            if errors:
                self.emit(writer, [(e, None) for e in errors])
            if not todo:
                continue
            # Encoder batches stream in from a worker thread, so the judge starts on the first batch
            # instead of waiting for the whole window to be encoded.
            stream = self.grader.scorer.score_batches([(r, a) for _, r, a in todo])
            t0 = time.perf_counter()
            while (group := await asyncio.to_thread(next, stream, None)) is not None:
                for i, emb in group:
                    row, rub, ans = todo[i]
                    task = asyncio.create_task(one(row, rub, ans, emb, t0))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    # Bounded look-ahead: keeps memory flat and the judge busy while the next batch encodes.
                    while len(inflight) >= conc * 4:
                        await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            release_memory()
            for t in [t for t in inflight if t.done()]:
                t.result()
        if inflight:
            await asyncio.gather(*inflight)


def run_batch(grader: Grader, opts: BatchOptions, progress: Progress | None = None) -> BatchSummary:
    """Grade every row of opts.input into opts.output (see module doc). Returns this run's summary."""
    out_fmt, state = prepare_output(opts)
    run = _Run(grader, opts, progress)
    run.summary.torn_bytes = state.torn_bytes
    fields = [*OUTPUT_FIELDS, "result"] if opts.full else None
    _ = grader.scorer  # load the model before the clock starts: the rate is grading, not start-up
    before = getattr(grader.judge, "run_usage", None)
    t0 = run.t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        with RecordWriter(opts.output, out_fmt, fields) as writer:  # type: ignore[arg-type]
            if grader.judge is None:
                run.run_offline(writer, state)
            else:
                asyncio.run(run.run_judged(writer, state))
    finally:
        run.summary.elapsed_s = time.perf_counter() - t0
        run.summary.cpu_s = time.process_time() - cpu0
        spent = getattr(grader.judge, "run_usage", None)
        if spent is not None and before is not None:
            # Tokens this run actually paid for: answers served from the judge cache cost nothing.
            s = run.summary
            s.prompt_tokens = spent.prompt_tokens - before.prompt_tokens
            s.completion_tokens = spent.completion_tokens - before.completion_tokens
            if spent.cost_usd is not None:
                s.cost_usd = spent.cost_usd - (before.cost_usd or 0.0)
    return run.summary
