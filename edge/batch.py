"""Many inputs for `dashcam anonymize`: every core (a process pool), and a resume log so a batch can go on.

With `jobs` > 1, each worker process loads the models once, with one onnxruntime thread
(`detect.intra_op_threads: 1`), and takes whole inputs; the parent loads no model. The
offline path is deterministic and onnxruntime gives the same boxes with one thread as with
several here, so the outputs are the same bytes as a single process's (tested).
Ctrl-C lets running inputs finish, and starts no new one.

With a pool, a video longer than 1.5 pieces (`piece_seconds`, default 60 s) in a container
that joins exactly (MP4, MOV, Matroska) is cut into pieces that workers share
(`edge.pieces`); the parent joins them by remuxing when the last one is in. Finished pieces
live in `.dashcam-pieces/` under the output folder until then, so `resume` goes on from the
pieces a killed batch had finished.

Every finished input is appended to `.dashcam-anonymize.jsonl` in the output folder (input
path, size, modification time, the config's hash, the models' sha256). `resume` skips an
input whose line matches and whose output exists; anything changed is done again. Outputs
are written atomically (`NAME.partial`, renamed when complete), so a batch killed mid-file
leaves no half output under a final name, and its input is simply done again.
"""
from __future__ import annotations

import concurrent.futures
from concurrent.futures.process import BrokenProcessPool
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edge.anonymize import Job, JobResult, anonymize_all, job_result, run_job
from edge.camera.images import is_image
from edge.config import Config, config_digest
from edge.detect.factory import build_detectors, guarded, model_ids, model_keys
from edge.detect.guard import GuardedDetector
from edge.detect.models import resolve_model
from edge.errors import ModelError, SourceError, StorageError, UserError
from edge.pieces import (DEFAULT_PIECE_SECONDS, SPLITTABLE, PieceJob, anonymize_piece, join_pieces, plan_video,
                         read_piece, remove_pieces)
from edge.pipeline import RunStats
from edge.record.atomic import append_line
from edge.redact import Redactor

log = logging.getLogger(__name__)

RESUME_NAME = ".dashcam-anonymize.jsonl"
PIECES_NAME = ".dashcam-pieces"  # finished pieces of split videos, until they are joined
# Starting a worker (imports, models) costs seconds: fewer inputs than this run in one process.
MIN_JOBS_FOR_POOL = 4


@dataclass(frozen=True)
class Fingerprint:
    """What an output depends on besides its input."""

    config_sha256: str
    models: dict[str, str]

    @classmethod
    def of(cls, config: Config) -> Fingerprint:
        return cls(config_digest(config), model_ids(config.detect))


class ResumeLog:
    """The output folder's record of finished inputs; a torn last line (a kill mid-write) is ignored."""

    def __init__(self, output_dir: Path, fingerprint: Fingerprint) -> None:
        self.path = output_dir / RESUME_NAME
        self._fingerprint = fingerprint
        self._done: dict[str, dict] = {}
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("input"), str):
                self._done[entry["input"]] = entry

    def _entry(self, job: Job) -> dict:
        info = job.source.stat()
        return {"input": str(job.source.resolve()), "output": str(job.output), "size": info.st_size,
                "mtime_ns": info.st_mtime_ns, "config_sha256": self._fingerprint.config_sha256,
                "models": self._fingerprint.models, "keep_audio": job.keep_audio}

    def key(self, job: Job) -> str:
        """A short name for this input with this config and these models (its pieces' folder)."""
        entry = self._entry(job)
        return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]

    def is_done(self, job: Job) -> bool:
        try:
            expected = self._entry(job)
        except OSError:
            return False
        return self._done.get(expected["input"]) == expected and job.output.is_file()

    def record(self, job: Job) -> None:
        entry = self._entry(job)
        self._done[entry["input"]] = entry
        append_line(self.path, (json.dumps(entry, sort_keys=True) + "\n").encode())


def run_batch(jobs: list[Job], output_dir: Path, config: Config, workers: int, stop: threading.Event,
              on_result: Callable[[JobResult], None], resume: bool = False,
              piece_seconds: float = DEFAULT_PIECE_SECONDS,
              engine: Callable[[Config, int], Executor] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> tuple[RunStats, int]:
    """Anonymize `jobs` (skipping those the resume log says are done, with `resume`); the totals and how many
    were skipped. Each result goes to `on_result` as it comes. `engine` makes the pool of `workers` (default: local
    processes; `edge.cluster.RayCluster.pool` for a Ray cluster, which always gets the pool). `on_progress` hears
    (tasks done, tasks) as each input or piece of a video finishes."""
    log_file = ResumeLog(output_dir, Fingerprint.of(config))
    todo = [job for job in jobs if not (resume and log_file.is_done(job))]

    def finished(result: JobResult) -> None:
        if result.stats is not None:
            log_file.record(result.job)
        on_result(result)

    splits = _split_videos(todo, output_dir, config, log_file, piece_seconds, resume) if workers > 1 else []
    progress = on_progress or (lambda done, total: None)
    if engine is None and (workers <= 1 or (len(todo) < MIN_JOBS_FOR_POOL and not splits)):
        detector, redactor = _models(config)
        results = [0]

        def counted(result: JobResult) -> None:
            finished(result)
            results[0] += 1
            progress(results[0], len(todo))

        try:
            return anonymize_all(todo, config, detector, redactor, stop, counted), len(jobs) - len(todo)
        finally:
            detector.close()
    models_dir = Path(config.detect.models_dir) if config.detect.models_dir else None
    for key in model_keys(config.detect):  # a missing or altered model: one line here, not in every worker
        resolve_model(key, models_dir)
    by_job = {split.job: split for split in splits}
    tasks: list[Job | PieceJob] = []
    for job in todo:
        tasks.extend(by_job[job].waiting if job in by_job else [job])
    return (_in_pool(tasks, config, workers, stop, finished, {s.folder: s for s in splits}, engine, progress),
            len(jobs) - len(todo))


class _SplitVideo:
    """A video cut into pieces: which are finished, and the join when the last one is in."""

    def __init__(self, job: Job, pieces: list[PieceJob], folder: Path) -> None:
        self.job, self.pieces, self.folder = job, pieces, folder
        self.done: dict[int, tuple[int | None, RunStats]] = {}
        for piece in pieces:
            finished = read_piece(piece)
            if finished is not None:
                self.done[piece.piece.number] = finished
        self.waiting = [p for p in pieces if p.piece.number not in self.done]
        self.error: UserError | None = None
        self.reported = False

    def piece_done(self, piece: PieceJob, stats: RunStats | None, error: UserError | None,
                   finished: Callable[[JobResult], None]) -> None:
        found = read_piece(piece) if stats is not None else None
        if found is None:  # failed, or its file or record cannot be read here (a shared folder behind): no join
            self.error = self.error or error or StorageError(
                f"{self.job.source}: piece {piece.piece.number} finished but {piece.record} or {piece.video} "
                "cannot be read; run again with --resume")
            found = (None, RunStats())
        self.done[piece.piece.number] = found
        self.finish_if_complete(finished)

    def finish_if_complete(self, finished: Callable[[JobResult], None]) -> None:
        if self.reported or len(self.done) < len(self.pieces):
            return
        self.reported = True
        if self.error is not None:
            finished(JobResult(self.job, error=self.error))
            return
        total = RunStats()
        parts = []
        for piece in self.pieces:
            offset, stats = self.done[piece.piece.number]
            total.add(stats)
            if offset is not None:
                parts.append((piece.video, offset))
        try:
            if not parts:
                raise SourceError(f"{self.job.source}: no frame was stored")
            join_pieces(parts, self.job.output, audio_from=self.job.source if self.job.keep_audio else None)
        except UserError as exc:
            finished(JobResult(self.job, error=exc))
            return
        remove_pieces(self.folder)
        finished(JobResult(self.job, stats=total))


def _split_videos(jobs: list[Job], output_dir: Path, config: Config, log_file: ResumeLog, piece_seconds: float,
                  resume: bool) -> list[_SplitVideo]:
    """The videos worth cutting into pieces, each with its pieces' folder (emptied unless resuming)."""
    splits = []
    for job in jobs:
        if is_image(job.source) or job.output.suffix.lower() not in SPLITTABLE:
            continue
        plan = plan_video(job.source, piece_seconds, config.track)
        if plan is None:
            continue
        folder = output_dir / PIECES_NAME / log_file.key(job)
        if not resume:
            remove_pieces(folder)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        pieces = [PieceJob(plan, piece, folder, job.output.suffix.lower()) for piece in plan.pieces]
        splits.append(_SplitVideo(job, pieces, folder))
    return splits


def _models(config: Config) -> tuple[GuardedDetector, Redactor]:
    return guarded(build_detectors(config.detect, live=False), config.detect, live=False), Redactor(config.redact)


class Executor(Protocol):
    """What the batch needs of a pool of workers: the local process pool, or Ray actors (`edge.cluster`)."""

    def submit(self, fn: Callable[..., JobResult], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


def local_pool(config: Config, workers: int) -> Executor:
    """`workers` spawned processes, each with the models loaded once."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads (onnxruntime, PyAV)
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=_start_worker, initargs=(config,))


def single_threaded(config: Config) -> Config:
    """A worker's config: one onnxruntime thread per model, since the workers share the cores."""
    return dataclasses.replace(config, detect=dataclasses.replace(config.detect, intra_op_threads=1))


def _in_pool(tasks: list[Job | PieceJob], config: Config, workers: int, stop: threading.Event,
             finished: Callable[[JobResult], None], splits: dict[Path, _SplitVideo],
             engine: Callable[[Config, int], Executor] | None = None,
             progress: Callable[[int, int], None] = lambda done, total: None) -> RunStats:
    total = RunStats()
    pool = (engine or local_pool)(single_threaded(config), max(1, min(workers, len(tasks))))

    def counted(result: JobResult) -> None:
        if result.stats is not None:
            total.add(result.stats)
        finished(result)

    for split in splits.values():  # a resumed video whose pieces were all finished: joined now
        split.finish_if_complete(counted)
    futures = {pool.submit(_work, task): task for task in tasks}
    pending, completed = set(futures), 0
    try:
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=0.5,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                task = futures[future]
                result = _result(future, task)
                if isinstance(task, PieceJob):
                    splits[task.folder].piece_done(task, result.stats, result.error, counted)
                else:
                    counted(result)
                completed += 1
                progress(completed, len(tasks))
            if stop.is_set():
                for future in pending:
                    future.cancel()  # the running ones finish: their outputs are complete
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return total


def _result(future: concurrent.futures.Future, task: Job | PieceJob) -> JobResult:
    """The worker's result; a worker that could not start or died (a model missing, killed) ends the batch
    with one line, any other failure is this input's."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise ModelError("a worker process could not start or died (check the models with `dashcam doctor`; "
                         "or run with --jobs 1 to see the error)") from None
    except Exception as exc:  # noqa: BLE001 - reported as this input's failure; the batch goes on
        source = task.plan.source if isinstance(task, PieceJob) else task.source
        log.debug("worker failure on %s", source, exc_info=True)
        job = task if isinstance(task, Job) else Job(source, task.video)
        return JobResult(job, error=SourceError(f"{source}: {type(exc).__name__}: {exc}"))


_worker_models: tuple[GuardedDetector, Redactor, Config] | None = None


def _start_worker(config: Config) -> None:
    """In each worker process: the models, loaded once; stop signals are the parent's to handle."""
    global _worker_models
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    detector, redactor = _models(config)
    _worker_models = (detector, redactor, config)


def _work(task: Job | PieceJob) -> JobResult:
    assert _worker_models is not None, "the pool's initializer loads the models"
    return run_task(task, *_worker_models)


class Worker:
    """The models of one worker (a Ray actor: `edge.cluster`), loaded once, and the tasks it runs."""

    def __init__(self, config: Config) -> None:
        detector, redactor = _models(config)
        self._models = (detector, redactor, config)

    def run(self, task: Job | PieceJob) -> JobResult:
        return run_task(task, *self._models)


def run_task(task: Job | PieceJob, detector: GuardedDetector, redactor: Redactor, config: Config) -> JobResult:
    """A whole input or one piece of a video, with a worker's models; a problem with it is its result."""
    if isinstance(task, Job):
        return run_job(task, config, detector, redactor, threading.Event())
    return job_result(Job(task.plan.source, task.video),
                      lambda: anonymize_piece(task, config, detector, redactor, threading.Event()))
