"""`dashcam anonymize --engine ray`: the batch's inputs and video pieces run on a Ray cluster.

The parent plans the pieces, keeps the resume log and joins split videos exactly as with
the local process pool (`edge.batch`); only where a task runs changes. One Ray actor per
worker (one CPU each, one onnxruntime thread per model) loads the models once and takes the
next task when it has finished the last, so a slow video does not hold up the others.
Inputs and outputs travel as paths: every node must see them at the same place (a shared
filesystem such as NFS), and every node needs dashcam and its models installed.

Ray is an optional extra (`pip install 'privacy-dashcam[cluster]'`); nothing else imports
this module.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from edge.anonymize import Job, JobResult
from edge.batch import Worker
from edge.config import Config
from edge.errors import SourceError
from edge.pieces import PieceJob


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SourceError("--engine ray needs Ray: pip install 'privacy-dashcam[cluster]'") from None
    return ray


class RayCluster:
    """A connection to a Ray cluster (`address`, or a cluster of this machine alone when it is None)."""

    def __init__(self, address: str | None) -> None:
        ray = self._ray = _ray()
        _check_reachable(address or os.environ.get("RAY_ADDRESS"))
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SourceError(f"cannot connect to the Ray cluster at {address or 'this machine'}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

    @property
    def cpus(self) -> int:
        """CPUs the cluster offers: the default number of workers."""
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def pool(self, config: Config, workers: int) -> ActorPool:
        return ActorPool(self._ray, config, workers)

    def close(self) -> None:
        self._ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 10.0) -> None:
    """One clear line for a HOST:PORT that does not answer: Ray itself retries for minutes."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SourceError(f"--ray-address {address}: expected HOST:PORT of the cluster's head")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SourceError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}") from None


class ActorPool:
    """The part of `concurrent.futures.Executor` the batch uses, over `workers` Ray actors: each task goes to
    an idle actor, or waits in order for one."""

    def __init__(self, ray: Any, config: Config, workers: int) -> None:
        actor_class = ray.remote(num_cpus=1)(Worker)
        self._idle = collections.deque(actor_class.remote(config) for _ in range(workers))
        self._queue: collections.deque[tuple[Job | PieceJob, concurrent.futures.Future]] = collections.deque()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., JobResult], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """`fn` is the local pool's entry point; an actor runs the same task (`args[0]`) through `Worker.run`."""
        (task,) = args
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._queue.append((task, future))
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give queued tasks to idle actors (lock held)."""
        while self._idle and self._queue:
            task, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            actor = self._idle.popleft()
            reference = actor.run.remote(task)
            reference.future().add_done_callback(
                lambda done, actor=actor, future=future: self._finished(actor, future, done))

    def _finished(self, actor: Any, future: concurrent.futures.Future, done: concurrent.futures.Future) -> None:
        try:
            future.set_result(done.result())
        except Exception as exc:  # noqa: BLE001 - the batch reports it as this task's failure
            future.set_exception(exc)
        with self._lock:
            self._idle.append(actor)
            self._dispatch()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[1].cancel()
