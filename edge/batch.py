"""Many inputs for `dashcam anonymize`: every core (a process pool), and a resume log so a batch can go on.

With `jobs` > 1, each worker process loads the models once, with one onnxruntime thread
(`detect.intra_op_threads: 1`), and takes whole inputs; the parent loads no model. The
offline path is deterministic and onnxruntime gives the same boxes with one thread as with
several here, so the outputs are the same bytes as a single process's (tested).
Ctrl-C lets running inputs finish, and starts no new one.

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
import json
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.anonymize import Job, JobResult, anonymize_all, run_job
from edge.config import Config, config_digest
from edge.detect.factory import build_detectors, guarded, model_ids, model_keys
from edge.detect.guard import GuardedDetector
from edge.detect.models import resolve_model
from edge.errors import ModelError, SourceError
from edge.pipeline import RunStats
from edge.record.atomic import append_line
from edge.redact import Redactor

log = logging.getLogger(__name__)

RESUME_NAME = ".dashcam-anonymize.jsonl"
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
                "models": self._fingerprint.models}

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
              on_result: Callable[[JobResult], None], resume: bool = False) -> tuple[RunStats, int]:
    """Anonymize `jobs` (skipping those the resume log says are done, with `resume`); the totals and how many
    were skipped. Each result goes to `on_result` as it comes."""
    log_file = ResumeLog(output_dir, Fingerprint.of(config))
    todo = [job for job in jobs if not (resume and log_file.is_done(job))]

    def finished(result: JobResult) -> None:
        if result.stats is not None:
            log_file.record(result.job)
        on_result(result)

    if workers <= 1 or len(todo) < MIN_JOBS_FOR_POOL:
        detector, redactor = _models(config)
        try:
            return anonymize_all(todo, config, detector, redactor, stop, finished), len(jobs) - len(todo)
        finally:
            detector.close()
    models_dir = Path(config.detect.models_dir) if config.detect.models_dir else None
    for key in model_keys(config.detect):  # a missing or altered model: one line here, not in every worker
        resolve_model(key, models_dir)
    return _in_pool(todo, config, workers, stop, finished), len(jobs) - len(todo)


def _models(config: Config) -> tuple[GuardedDetector, Redactor]:
    return guarded(build_detectors(config.detect, live=False), config.detect, live=False), Redactor(config.redact)


def _in_pool(jobs: list[Job], config: Config, workers: int, stop: threading.Event,
             finished: Callable[[JobResult], None]) -> RunStats:
    total = RunStats()
    single_thread = dataclasses.replace(config, detect=dataclasses.replace(config.detect, intra_op_threads=1))
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads (onnxruntime, PyAV)
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                                                  initializer=_start_worker, initargs=(single_thread,))
    futures = {pool.submit(_work, job): job for job in jobs}
    pending = set(futures)
    try:
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=0.5,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                result = _result(future, futures[future])
                if result.stats is not None:
                    total.add(result.stats)
                finished(result)
            if stop.is_set():
                for future in pending:
                    future.cancel()  # the running ones finish: their outputs are complete
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return total


def _result(future: concurrent.futures.Future, job: Job) -> JobResult:
    """The worker's result; a worker that could not start or died (a model missing, killed) ends the batch
    with one line, any other failure is this input's."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise ModelError("a worker process could not start or died (check the models with `dashcam doctor`; "
                         "or run with --jobs 1 to see the error)") from None
    except Exception as exc:  # noqa: BLE001 - reported as this input's failure; the batch goes on
        log.debug("worker failure on %s", job.source, exc_info=True)
        return JobResult(job, error=SourceError(f"{job.source}: {type(exc).__name__}: {exc}"))


_worker_models: tuple[GuardedDetector, Redactor, Config] | None = None


def _start_worker(config: Config) -> None:
    """In each worker process: the models, loaded once; stop signals are the parent's to handle."""
    global _worker_models
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    detector, redactor = _models(config)
    _worker_models = (detector, redactor, config)


def _work(job: Job) -> JobResult:
    assert _worker_models is not None, "the pool's initializer loads the models"
    detector, redactor, config = _worker_models
    return run_job(job, config, detector, redactor, threading.Event())
