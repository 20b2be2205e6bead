"""`grader batch`: stream an answer file, grade it window by window, append one record per input row.

Memory stays flat: rows are read one at a time into windows of `chunk_size` rows; a window is tokenised
and sorted by length (little padding), then encoded one encoder batch at a time, and each batch's
records are appended as soon as it is graded. With a judge, at most a bounded number of judge calls are
in flight. So `--resume` after a crash or kill -9 grades only the rows whose records are missing.
While the run goes, records are in completion order (each carries `line` and `id`); once it has
finished, the file is put in input order (reorder.py).

OUTPUT is opened and locked (output_file.py) before any model is loaded, and a failed write ends the
run with OutputError; a row that cannot be graded only ever ends in its own error record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import InputError
from grader.models import GradeResult, Rubric
from grader.pipeline.batch_io import OUTPUT_FIELDS, Columns, InputRow, detect_format, read_rows
from grader.pipeline.batch_summary import BatchSummary
from grader.pipeline.grader import Grader, check_answer
from grader.pipeline.output_file import CSV_FIELDS, OutputFile
from grader.pipeline.reorder import sort_by_input_line
from grader.pipeline.resume import ResumeState, load_resume_state
from grader.pipeline.review import ReviewTally
from grader.redact import redact

# Rows read ahead and sorted by token count before encoding: a wider window pads less (2,048 rows pad
# ~20% fewer tokens than 512 on the benchmark file). Memory does not grow with it: each encoder batch
# is reduced to signals and written out before the next one runs.
DEFAULT_CHUNK = 2048
Progress = Callable[[int, "BatchSummary"], None]  # (input rows read so far, running summary)
READ_REPORT_EVERY = 512  # rows read between progress reports while a window is read ahead


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
            {"id": c.id, "status": c.status, "credit": c.credit, "coverage": c.coverage, "verdict": c.verdict,
             "text": c.text}
            for c in result.criteria
        ],
        "error": None,
        "warnings": [redact(w) for w in result.warnings],
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
        "error": redact(message),
        "warnings": [],
        "confidence": None,
        "review": [],
    }


# ---------------------------------------------------------------------------------------------- run


@dataclass
class OpenedOutput:
    """OUTPUT locked for this run, with what an earlier run already wrote into it."""

    file: OutputFile
    state: ResumeState

    def close(self, failed: bool = False) -> None:
        self.file.close(discard_if_unused=failed)


def _check_input(opts: BatchOptions) -> None:
    if not opts.input.is_file():
        what = "no such input file" if not opts.input.exists() else "INPUT is not a regular file"
        raise InputError(what, file=opts.input)
    rows = read_rows(opts.input, opts.columns, detect_format(opts.input, opts.input_format))
    try:
        next(rows, None)  # an unusable header is reported now, before any model is loaded
    finally:
        rows.close()


def open_output(opts: BatchOptions) -> OpenedOutput:
    """Check INPUT, lock OUTPUT (one writer per file), refuse to overwrite it without --force, and read
    what --resume continues. Cheap: the CLI calls it before loading any model."""
    _check_input(opts)
    out_fmt = detect_format(opts.output)
    if opts.output.exists() and opts.output.resolve() == opts.input.resolve():
        raise InputError("OUTPUT is the INPUT file", file=opts.output)
    if opts.output.is_dir():
        raise InputError("OUTPUT is a directory", file=opts.output)
    if not opts.output.parent.is_dir():
        raise InputError("the folder for OUTPUT does not exist", file=opts.output)
    fields = [*OUTPUT_FIELDS] if out_fmt == "jsonl" else [*CSV_FIELDS, *(["criteria"] if opts.full else [])]
    out = OutputFile(opts.output, out_fmt, [*fields, *(["result"] if opts.full else [])])
    try:
        state = ResumeState()
        if out.size > 0:
            if opts.resume:
                state = load_resume_state(opts.output, out_fmt, out)
            elif opts.force:
                out.truncate(0)
            else:
                raise InputError(
                    "OUTPUT exists; use --resume to continue it or --force to replace it", file=opts.output
                )
        out.start()
    except BaseException:
        out.close(discard_if_unused=True)
        raise
    return OpenedOutput(out, state)


class _Run:
    def __init__(self, grader: Grader, opts: BatchOptions, progress: Progress | None) -> None:
        self.grader = grader
        self.opts = opts
        self.progress = progress
        self.summary = BatchSummary()
        self.read = 0  # input rows read so far, those already done included
        self.t0 = time.perf_counter()

    def rows(self, state: ResumeState) -> Iterator[InputRow]:
        fmt = detect_format(self.opts.input, self.opts.input_format)
        for row in read_rows(self.opts.input, self.opts.columns, fmt):
            self.read += 1
            if self.progress is not None and self.read % READ_REPORT_EVERY == 0:
                self.progress(self.read, self.summary)  # reading ahead is work too: show it
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

    def emit(self, writer: OutputFile, records: list[tuple[dict[str, Any], GradeResult | None]]) -> None:
        writer.write([r for r, _ in records])
        for rec, res in records:
            self.summary.add(rec, res)
        self.summary.elapsed_s = time.perf_counter() - self.t0
        if self.progress is not None:
            self.progress(self.read, self.summary)

    def grade_offline(self, writer: OutputFile, todo: list[tuple[InputRow, Rubric, str]]) -> None:
        """Grade one window, appending each encoder batch's records as soon as that batch is done.

        A failure of the scorer is the rows' problem (they are graded again one by one, and a row that
        still fails gets an error record); a failure to write is the run's (OutputError ends it)."""
        pending = dict(enumerate(todo))
        batches = self.grader.grade_offline_batches([(rub, ans) for _, rub, ans in todo])
        while True:
            try:
                group = next(batches, None)
            except Exception:
                break
            if group is None:
                return
            records = []
            for i, res in sorted(group, key=lambda g: pending[g[0]][0].line):
                row, rub, ans = pending.pop(i)
                records.append((self.record(row, rub, ans, res), res))
            self.emit(writer, records)
        for row, rub, ans in pending.values():
            try:
                res = self.grader._grade_pairs_offline([(rub, ans)])[0]
                rec: tuple[dict[str, Any], GradeResult | None] = (self.record(row, rub, ans, res), res)
            except Exception as e:
                rec = (error_record(row, f"cannot grade: {type(e).__name__}: {e}"), None)
            self.emit(writer, [rec])

    def run_offline(self, writer: OutputFile, state: ResumeState) -> None:
        for errors, todo in self.chunks(state):
            if errors:
                self.emit(writer, [(e, None) for e in errors])
            if todo:
                self.grade_offline(writer, todo)
            release_memory()

    async def run_judged(self, writer: OutputFile, state: ResumeState) -> None:
        judge = self.grader.judge
        conc = self.grader.settings.judge.concurrency
        sem = asyncio.Semaphore(conc)
        inflight: set[asyncio.Task[None]] = set()

        async def one(row: InputRow, rub: Rubric, ans: str, emb: Any, t0: float) -> None:
            try:
                async with sem:
                    jr = await judge.ajudge(rub, ans)
                res = self.grader.finish(rub, ans, emb, jr, (time.perf_counter() - t0) * 1000)
                rec: tuple[dict[str, Any], GradeResult | None] = (self.record(row, rub, ans, res), res)
            except Exception as e:  # the judge should not raise; if it does, the row still gets a record
                rec = (error_record(row, f"cannot grade: {type(e).__name__}: {e}"), None)
            self.emit(writer, [rec])  # OutputError ends the run (raised below, from the task)

        def raise_failures() -> None:
            if writer.broken is not None:
                for t in inflight:
                    t.cancel()
                raise writer.broken

        try:
            for errors, todo in self.chunks(state):
                raise_failures()
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
                            raise_failures()
                release_memory()
            while inflight:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                raise_failures()
        finally:
            for t in inflight:
                t.cancel()
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)


def run_batch(grader: Grader, opts: BatchOptions, progress: Progress | None = None,
              opened: OpenedOutput | None = None) -> BatchSummary:
    """Grade every row of opts.input into opts.output (see module doc). Returns this run's summary.

    `opened` is OUTPUT as `open_output` locked it (the CLI opens it before loading the model); without
    it, it is opened here. Raises OutputError when OUTPUT cannot be written (the file stays resumable)."""
    out = opened if opened is not None else open_output(opts)
    failed = True
    try:
        summary = _run(grader, opts, progress, out)
        failed = False
        try:
            sort_by_input_line(opts.output, out.file.fmt)
        except (OSError, ValueError) as e:
            summary.warnings.append(f"records left in completion order: could not sort them ({e})")
        return summary
    finally:
        if opened is None:
            out.close(failed=failed)


def _run(grader: Grader, opts: BatchOptions, progress: Progress | None, out: OpenedOutput) -> BatchSummary:
    run = _Run(grader, opts, progress)
    run.summary = out.state.prior  # the counts cover the whole file, the records already in it too
    run.summary.torn_bytes = out.state.torn_bytes
    _ = grader.scorer  # load the model before the clock starts: the rate is grading, not start-up
    before = getattr(grader.judge, "run_usage", None)
    t0 = run.t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        if grader.judge is None:
            run.run_offline(out.file, out.state)
        else:
            asyncio.run(run.run_judged(out.file, out.state))
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
