"""Where redacted frames go: several sinks, each in its own thread behind its own bounded queue.

Only `RedactedFrame`s (and "a frame was dropped here" markers) cross a queue. Each sink is
an `Outlet` with a stated policy:

- `BLOCK` (the recorder): nothing is lost. A full queue makes the redact thread wait
  (never capture: a live line then fills and drops, counted, see edge.pipeline). An error
  in the sink is raised again in the redact thread and ends the run.
- `DROP_OLDEST` (a live preview, an uploader's tap): a full queue loses its oldest frame,
  counted per sink, so a slow viewer never slows redaction. An error ends this sink only:
  logged once, counted, the others go on.

All outlets see the same frames in the same order; a `RedactedFrame` is read-only, so
sharing it is safe. `FanOut.close()` closes every sink, even after an error, so the
segment being written is finished, not lost.
"""
from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge.redact import RedactedFrame, require_redacted

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    def write(self, frame: RedactedFrame) -> None: ...

    def note_dropped(self) -> None: ...

    def close(self) -> None: ...


class SinkPolicy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop-oldest"


@dataclass(frozen=True)
class Outlet:
    sink: FrameSink
    name: str = "store"
    policy: SinkPolicy = SinkPolicy.BLOCK
    depth: int = 4  # frames queued before the policy applies


_DROPPED = object()  # marker: the pipeline dropped a frame here (fail-closed `drop`)
_CLOSE = object()


class BackgroundSink:
    """One outlet: a writer thread draining a bounded queue into the sink under the outlet's policy.

    `busy_seconds` is the writer's own time; `skipped` counts frames a `DROP_OLDEST` queue lost.
    """

    def __init__(self, sink: FrameSink | Outlet, depth: int = 4) -> None:
        self.outlet = sink if isinstance(sink, Outlet) else Outlet(sink, depth=depth)
        self._queue: queue.Queue = queue.Queue(maxsize=self.outlet.depth)
        self._error: BaseException | None = None
        self.failed = False  # stays set: after one failure nothing more is written to this sink
        self.busy_seconds = 0.0
        self.skipped = 0
        self._thread = threading.Thread(target=self._drain, name=f"sink-{self.outlet.name}", daemon=True)
        self._thread.start()

    @property
    def blocking(self) -> bool:
        return self.outlet.policy is SinkPolicy.BLOCK

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _CLOSE:
                return
            if self.failed:
                continue  # keep draining so the producer never blocks on a dead writer
            started = time.perf_counter()
            try:
                if item is _DROPPED:
                    self.outlet.sink.note_dropped()
                else:
                    self.outlet.sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread or logged, not swallowed
                self.failed = True
                if self.blocking:
                    self._error = exc
                else:
                    log.warning("sink %s failed and is stopped; the others go on: %s", self.outlet.name, exc)
            self.busy_seconds += time.perf_counter() - started

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _put(self, item: object) -> None:
        if self.blocking:
            self._raise_pending()
            self._queue.put(item)
            return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    if self._queue.get_nowait() is not _DROPPED:
                        self.skipped += 1
                except queue.Empty:
                    pass  # the writer took one meanwhile: there is room now

    def write(self, frame: RedactedFrame) -> None:
        require_redacted(frame, f"sink {self.outlet.name}")
        self._put(frame)

    def note_dropped(self) -> None:
        self._put(_DROPPED)

    def close(self) -> None:
        self._queue.put(_CLOSE)
        self._thread.join()
        try:
            self._raise_pending()
        finally:
            self._close_sink()

    def _close_sink(self) -> None:
        if self.blocking:
            self.outlet.sink.close()
            return
        try:
            self.outlet.sink.close()
        except Exception as exc:  # noqa: BLE001 - a best-effort sink never fails the run
            log.warning("closing sink %s: %s", self.outlet.name, exc)


class FanOut:
    """Every redacted frame to every outlet, in order; see the module docstring for the policies."""

    def __init__(self, outlets: Sequence[FrameSink | Outlet]) -> None:
        if not outlets:
            raise ValueError("a pipeline needs at least one sink")
        names = [o.name if isinstance(o, Outlet) else "store" for o in outlets]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must differ: {names}")
        self._workers: list[BackgroundSink] = []
        try:
            for outlet in outlets:
                self._workers.append(BackgroundSink(outlet))
        except BaseException:
            self.close()
            raise

    def write(self, frame: RedactedFrame) -> None:
        for worker in self._workers:
            worker.write(frame)

    def note_dropped(self) -> None:
        for worker in self._workers:
            worker.note_dropped()

    def close(self) -> None:
        """Close every sink; the first error of a blocking one is raised after all are closed."""
        first: BaseException | None = None
        for worker in self._workers:
            try:
                worker.close()
            except BaseException as exc:  # noqa: BLE001 - the others are closed before it is raised
                if first is None:
                    first = exc
        if first is not None:
            raise first

    @property
    def busy_seconds(self) -> float:
        """The blocking sinks' time: what can hold redaction up."""
        return sum(w.busy_seconds for w in self._workers if w.blocking)

    def busy_by_sink(self) -> dict[str, float]:
        """Each sink's own time, blocking or not (what a live preview costs)."""
        return {w.outlet.name: round(w.busy_seconds, 3) for w in self._workers}

    def skipped(self) -> dict[str, int]:
        return {w.outlet.name: w.skipped for w in self._workers}

    def failed(self) -> list[str]:
        return [w.outlet.name for w in self._workers if w.failed and not w.blocking]


class FileSink:
    """One encoder as the pipeline's sink, for a file made offline; a run that stored nothing leaves no file.

    With `keep`, only frames whose index lies in it are stored (a piece of a split video stores its
    own frames; its overlap's frames, redacted like the others, are let go), and `on_stored` hears
    of each frame stored.
    """

    def __init__(self, encoder: Encoder, keep: range | None = None,
                 on_stored: Callable[[RedactedFrame], None] | None = None) -> None:
        self.encoder = encoder
        self._keep = keep
        self._on_stored = on_stored

    def write(self, frame: RedactedFrame) -> None:
        if self._keep is None or frame.index in self._keep:
            self.encoder.write(frame)
            if self._on_stored is not None:
                self._on_stored(frame)

    def note_dropped(self) -> None:
        """Counted by the pipeline's RunStats; the file simply has no frame there."""

    def close(self) -> None:
        if self.encoder.frame_count:
            self.encoder.close()
        else:
            self.encoder.abort()


class Encoder(Protocol):
    """What `FileSink` needs of `edge.record.encoder.VideoEncoder`."""

    frame_count: int

    def write(self, frame: RedactedFrame) -> None: ...

    def close(self) -> object: ...

    def abort(self) -> None: ...
