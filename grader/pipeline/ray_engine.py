"""`grader batch --engine ray`: the same batch, graded by a pool of Ray actors on one machine or a cluster.

The driver (this process) stays the only reader of INPUT and the only writer of OUTPUT: it reads rows,
skips those `--resume` finds done, turns bad rows into error records, and ships the others in batches of
(line, question id, answer) to the actors. Each actor builds one `Grader` from the driver's settings and
rubrics folder (the encoder and the rubrics load once per actor) and grades a batch with the functions
the local engine uses, returning one GradeResult (or an error message) per row. The driver writes a
batch's records when its result comes back, so a batch whose actor dies (process killed, node lost) is
simply sent to a fresh actor: no row is lost, none is written twice, and `--resume` after the driver dies
works exactly as for the local engine (records are whole; rows without one are graded again).

Judge calls go out from the actors, each between an acquire and a release of a slot held by one named
actor (`JudgeSlots`): `--concurrency` is the whole cluster's. A lost actor's slots are given back by the
driver before its batch is resent.

Ray is imported here only, lazily: the base install does not have it (`pip install 'grader[ray]'`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.config import Settings
from grader.errors import GraderError
from grader.models import GradeResult, Rubric
from grader.pipeline.batch import BatchOptions, OpenedOutput, Progress, _Run, error_record, open_output
from grader.pipeline.batch_io import InputRow
from grader.pipeline.batch_summary import BatchSummary
from grader.pipeline.grader import DEFAULT_MAX_ANSWER_CHARS, Grader
from grader.pipeline.reorder import sort_by_input_line

TASKS_PER_WORKER = 2  # batches queued per actor: it starts the next one while the driver writes the last
MAX_ATTEMPTS = 3  # a batch whose actor dies this many times gets error records instead of a fourth try
LOCAL_OBJECT_STORE_MB = 150
ERRORS_PER_WRITE = 256  # error records of bad rows are written in groups (each write is fsynced)
INSTALL_HINT = "the Ray engine needs Ray: pip install 'grader[ray]'"

# (index in the batch, question id, answer); the reply per row: (index, GradeResult) or (index, error message).
Item = tuple[int, str, str]
Reply = tuple[int, GradeResult | str]


class RayUnavailable(GraderError):
    exit_code = 2


class RayWorkerError(GraderError):
    exit_code = 1


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(f"{INSTALL_HINT} (import failed: {e})") from e
    return ray


# -------------------------------------------------------------------------------------------- actors


class JudgeSlots:
    """A cluster-wide semaphore for judge calls, leased per actor so a dead actor's slots can be returned."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sem: asyncio.Semaphore | None = None
        self.held: Counter[str] = Counter()
        self.in_use = 0
        self.peak = 0

    async def acquire(self, holder: str) -> None:
        if self.sem is None:  # made on the actor's own event loop
            self.sem = asyncio.Semaphore(self.limit)
        await self.sem.acquire()
        self.held[holder] += 1
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self, holder: str, n: int = 1) -> None:
        n = min(n, self.held[holder])
        for _ in range(n):
            self.held[holder] -= 1
            self.in_use -= 1
            assert self.sem is not None
            self.sem.release()

    def release_all(self, holder: str) -> int:
        n = self.held[holder]
        self.release(holder, n)
        return n

    def stats(self) -> dict[str, int]:
        return {"limit": self.limit, "in_use": self.in_use, "peak": self.peak}


class GradeWorker:
    """One Grader per actor: encoder and rubrics loaded once, then batch after batch."""

    def __init__(self, settings_json: str, rubrics_dir: str, max_answer_chars: int, holder: str,
                 slots: Any = None) -> None:
        settings = Settings.model_validate_json(settings_json)
        self.grader = Grader(settings, rubrics_dir, max_answer_chars=max_answer_chars)
        self.holder = holder
        self.slots = slots
        _ = self.grader.scorer  # the model loads now, not in the first batch
        _ = self.grader.judge

    def info(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "holder": self.holder}

    def peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _pairs(self, items: list[Item]) -> tuple[list[tuple[int, Rubric, str]], list[Reply]]:
        good, bad = [], []
        for i, qid, answer in items:
            try:
                good.append((i, self.grader.rubric(qid), answer))
            except GraderError as e:  # the driver checked it; a worker with other files says so per row
                bad.append((i, f"cannot grade: {e}"))
        return good, bad

    async def grade(self, items: list[Item]) -> list[Reply]:
        """Grade one batch: offline exactly as the local engine does; with a judge, each call under a slot."""
        good, replies = self._pairs(items)
        pairs = [(r, a) for _, r, a in good]
        if self.grader.judge is None:
            replies += await asyncio.to_thread(self._offline, good, pairs)
            return replies
        t0 = time.perf_counter()
        embs = await asyncio.to_thread(self.grader.scorer.score_many, pairs)

        async def one(k: int) -> Reply:
            i, rub, ans = good[k]
            try:
                await self.slots.acquire.remote(self.holder)
                try:
                    jr = await self.grader.judge.ajudge(rub, ans)
                finally:
                    await self.slots.release.remote(self.holder)
                return i, self.grader.finish(rub, ans, embs[k], jr, (time.perf_counter() - t0) * 1000)
            except Exception as e:  # the judge should not raise; if it does, the row still gets a record
                return i, f"cannot grade: {type(e).__name__}: {e}"

        replies += await asyncio.gather(*(one(k) for k in range(len(good))))
        return replies

    def _offline(self, good: list[tuple[int, Rubric, str]], pairs: list[tuple[Rubric, str]]) -> list[Reply]:
        try:
            results = self.grader._grade_pairs_offline(pairs)
            return [(i, res) for (i, _, _), res in zip(good, results, strict=True)]
        except Exception:
            pass
        # As the local engine: a failed batch is graded again row by row; a row that still fails gets an error.
        out: list[Reply] = []
        for i, rub, ans in good:
            try:
                out.append((i, self.grader._grade_pairs_offline([(rub, ans)])[0]))
            except Exception as e:
                out.append((i, f"cannot grade: {type(e).__name__}: {e}"))
        return out


# -------------------------------------------------------------------------------------------- driver


@dataclass
class RayOptions:
    address: str | None = None  # None: RAY_ADDRESS, else a local Ray started for this run
    workers: int | None = None  # None: one per CPU of the cluster
    on_worker: Any = None  # called with each actor's info dict as it starts (the CLI prints it)


@dataclass
class RayReport:
    """What the Ray side of a run did: for the summary and the benchmark."""

    address: str = ""
    workers: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    judge_peak_in_flight: int | None = None
    driver_peak_rss_mb: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "workers": self.workers, "restarts": self.restarts,
                "judge_peak_in_flight": self.judge_peak_in_flight, "driver_peak_rss_mb": self.driver_peak_rss_mb}


def start_ray(ray: Any, ropts: RayOptions) -> bool:
    """Join ropts.address / RAY_ADDRESS, or start a small local Ray. True when this call started it."""
    if ray.is_initialized():
        return False
    address = ropts.address or os.environ.get("RAY_ADDRESS") or None
    # Workers must import this grader (a checkout on PYTHONPATH included), and say nothing on our stderr.
    env = {k: os.environ[k] for k in ("PYTHONPATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                      "TOKENIZERS_PARALLELISM") if k in os.environ}
    runtime_env = {"env_vars": env} if env else None
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
              "runtime_env": runtime_env}
    if address:
        ray.init(address=address, **common)
    else:
        cpus = ropts.workers or os.cpu_count() or 1
        ray.init(num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE_MB * 2**20, **common)
    return True


class _RayRun(_Run):
    """The local engine's row handling (_Run: reading, resume skip, validation, records, summary), with the
    grading sent to Ray actors."""

    def __init__(self, grader: Grader, opts: BatchOptions, progress: Progress | None, ray: Any,
                 ropts: RayOptions, report: RayReport) -> None:
        super().__init__(grader, opts, progress)
        self.ray = ray
        self.ropts = ropts
        self.report = report

    def _new_worker(self, remote_cls: Any, slots: Any, replacement: bool = False) -> tuple[Any, str]:
        holder = uuid.uuid4().hex[:12]
        s = self.grader.settings
        # A replacement asks for no CPU: when a whole node is gone, its CPU is too, and a worker waiting for
        # one would wait forever; sharing a surviving node's CPU finishes the run.
        cls = remote_cls.options(num_cpus=0) if replacement else remote_cls
        actor = cls.remote(s.model_dump_json(), str(Path(self.grader.rubrics_dir).resolve()),
                           self.grader.max_answer_chars, holder, slots)
        return actor, holder

    def run(self, writer: Any, state: Any, workers: int) -> None:
        ray = self.ray
        judged = self.grader.judge is not None
        slots = None
        if judged:
            slots_cls = ray.remote(num_cpus=0)(JudgeSlots)
            slots = slots_cls.remote(self.grader.settings.judge.concurrency)
        # One batch at a time per actor (the next waits, already shipped): two would share its CPU and memory.
        remote_cls = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=1)(GradeWorker)
        pool = [self._new_worker(remote_cls, slots) for _ in range(workers)]
        for actor, _ in pool:
            self._announce(actor, None)  # waits until each actor has loaded its model: the clock starts after
        self.t0 = time.perf_counter()

        # ref -> (actor index, batch, attempts); batches are lists of (row, rubric, answer)
        pending: dict[Any, tuple[int, list[tuple[InputRow, Rubric, str]], int]] = {}
        load = [0] * workers
        queue: deque[tuple[list[tuple[InputRow, Rubric, str]], int]] = deque()

        def submit(batch: list[tuple[InputRow, Rubric, str]], attempts: int) -> None:
            w = min(range(workers), key=load.__getitem__)
            items = [(k, rub.id, ans) for k, (_, rub, ans) in enumerate(batch)]
            ref = pool[w][0].grade.remote(items)
            pending[ref] = (w, batch, attempts)
            load[w] += 1

        def drain(block_until: int) -> None:
            while queue and min(load) < TASKS_PER_WORKER:
                submit(*queue.popleft())
            while len(pending) + len(queue) > block_until:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                w, batch, attempts = pending.pop(ref)
                load[w] -= 1
                try:
                    replies = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ActorUnavailableError, ray.exceptions.ObjectLostError):
                    self._replace(w, pool, remote_cls, slots, pending, load, queue)
                    if attempts + 1 >= MAX_ATTEMPTS:
                        self.emit(writer, [(error_record(row, f"cannot grade: the Ray worker was lost "
                                                              f"{MAX_ATTEMPTS} times"), None)
                                           for row, _, _ in batch])
                    else:
                        queue.append((batch, attempts + 1))
                except ray.exceptions.RayTaskError as e:  # the worker lives, the batch failed: its rows say why
                    why = f"cannot grade: {type(e.cause).__name__ if e.cause else 'RayTaskError'}: {e.cause or e}"
                    self.emit(writer, [(error_record(row, why[:1000]), None) for row, _, _ in batch])
                else:
                    self._write(writer, batch, replies)
                while queue and min(load) < TASKS_PER_WORKER:
                    submit(*queue.popleft())

        batch: list[tuple[InputRow, Rubric, str]] = []
        errors: list[tuple[dict[str, Any], None]] = []
        for row in self.rows(state):
            v = self.validate(row)
            if isinstance(v, str):
                errors.append((error_record(row, v), None))
                if len(errors) >= ERRORS_PER_WRITE:
                    self.emit(writer, errors)
                    errors = []
                continue
            batch.append((row, v[0], v[1]))
            # A batch is the local engine's window (--chunk-size rows to grade): the same answers are encoded
            # together, so every score is the local engine's to the last bit.
            if len(batch) >= self.opts.chunk_size:
                queue.append((batch, 0))
                batch = []
                drain(workers * TASKS_PER_WORKER)  # bounded look-ahead: memory stays flat in the rows
        if errors:
            self.emit(writer, errors)
        if batch:
            queue.append((batch, 0))
        drain(0)
        if slots is not None:
            self.report.judge_peak_in_flight = ray.get(slots.stats.remote())["peak"]
        for i, (actor, _) in enumerate(pool):
            with contextlib.suppress(Exception):
                self.report.workers[i]["peak_rss_mb"] = round(ray.get(actor.peak_rss_mb.remote(), timeout=30), 1)

    def _announce(self, actor: Any, slot: int | None) -> None:
        """Wait for the actor to be ready (model loaded), record it (as worker `slot`, or a new one), print it."""
        try:
            info = self.ray.get(actor.info.remote())
        except self.ray.exceptions.RayError as e:
            raise RayWorkerError(
                "a Ray worker could not start: each node needs grader[ray] installed and the rubrics at "
                f"{Path(self.grader.rubrics_dir).resolve()} ({type(e).__name__}: {str(e)[:500]})"
            ) from e
        if slot is None:
            self.report.workers.append(info)
        else:
            self.report.workers[slot] = info
        if self.ropts.on_worker is not None:
            self.ropts.on_worker(info)

    def _replace(self, w: int, pool: list[tuple[Any, str]], remote_cls: Any, slots: Any,
                 pending: dict[Any, Any], load: list[int], queue: deque[Any]) -> None:
        """Actor w died: give back its judge slots, requeue its other batches, and start a fresh one."""
        ray = self.ray
        actor, holder = pool[w]
        for ref, (ww, batch, attempts) in list(pending.items()):
            if ww == w:
                del pending[ref]
                load[w] -= 1
                queue.appendleft((batch, attempts))
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)
        if slots is not None:
            ray.get(slots.release_all.remote(holder))
        self.report.restarts += 1
        pool[w] = self._new_worker(remote_cls, slots, replacement=True)
        self._announce(pool[w][0], w)

    def _write(self, writer: Any, batch: list[tuple[InputRow, Rubric, str]], replies: list[Reply]) -> None:
        records = []
        for k, res in sorted(replies, key=lambda r: batch[r[0]][0].line):
            row, rub, ans = batch[k]
            if isinstance(res, str):
                records.append((error_record(row, res), None))
            else:
                records.append((self.record(row, rub, ans, res), res))
        self.emit(writer, records)


def run_batch_ray(settings: Settings, opts: BatchOptions, ropts: RayOptions | None = None,
                  progress: Progress | None = None, opened: OpenedOutput | None = None, *,
                  rubrics_dir: str | Path | None = None,
                  max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> tuple[BatchSummary, RayReport]:
    """Grade opts.input into opts.output on Ray (see module doc): the same OUTPUT the local engine writes."""
    ray = import_ray()
    ropts = ropts or RayOptions()
    out = opened if opened is not None else open_output(opts)
    # The driver's Grader only looks rubrics up (to check rows and to tally reviews); it loads no model.
    grader = Grader(settings, rubrics_dir, max_answer_chars=max_answer_chars)
    report = RayReport()
    started = False
    failed = True
    try:
        started = start_ray(ray, ropts)
        report.address = ropts.address or os.environ.get("RAY_ADDRESS") or "local"
        workers = ropts.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        run = _RayRun(grader, opts, progress, ray, ropts, report)
        run.summary = out.state.prior
        run.summary.torn_bytes = out.state.torn_bytes
        cpu0 = time.process_time()
        try:
            run.run(out.file, out.state, workers)
        finally:
            run.summary.elapsed_s = time.perf_counter() - run.t0
            run.summary.cpu_s = time.process_time() - cpu0
        failed = False
        report.driver_peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        try:
            sort_by_input_line(opts.output, out.file.fmt)
        except (OSError, ValueError) as e:
            run.summary.warnings.append(f"records left in completion order: could not sort them ({e})")
        return run.summary, report
    finally:
        if started:
            with contextlib.suppress(Exception):
                ray.shutdown()
        if opened is None:
            out.close(failed=failed)
        sys.stderr.flush()
