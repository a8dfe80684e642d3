"""Sinks behind their own queues: order, drop markers, errors, and the fan-out's two policies with real threads."""
import datetime as dt
import threading

import numpy as np
import pytest

from edge.config import RedactConfig
from edge.sinks import BackgroundSink, FanOut, Outlet, SinkPolicy
from edge.redact import Redactor
from edge.types import Detections, Frame


def _redacted(index: int):
    frame = Frame(np.zeros((4, 4, 3), np.uint8), index, 0, dt.datetime.now(dt.timezone.utc))
    return Redactor(RedactConfig()).redact(frame, Detections.empty())


class ListSink:
    def __init__(self, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.written, self.dropped, self.closed, self._fail_at = [], 0, False, fail_at
        self._gate = gate  # a slow viewer: each write waits for it

    def write(self, frame) -> None:
        if self._gate is not None:
            self._gate.wait()
        if frame.index == self._fail_at or self._fail_at == -1:
            raise OSError("disk full")
        self.written.append(frame.index)

    def note_dropped(self) -> None:
        self.dropped += 1

    def close(self) -> None:
        self.closed = True


def test_keeps_order_counts_drops_and_closes_inner_sink():
    inner = ListSink()
    sink = BackgroundSink(inner, depth=2)
    for i in range(20):
        sink.write(_redacted(i))
    sink.note_dropped()
    sink.close()
    assert inner.written == list(range(20)) and inner.dropped == 1 and inner.closed


def test_writer_error_reaches_the_producer_and_inner_sink_still_closes():
    inner = ListSink(fail_at=3)
    sink = BackgroundSink(inner, depth=1)
    with pytest.raises(OSError, match="disk full"):
        try:
            for i in range(50):
                sink.write(_redacted(i))
        finally:
            sink.close()  # as Pipeline.run does
    assert inner.written == [0, 1, 2] and inner.closed


def test_a_stalled_preview_loses_its_oldest_frames_and_never_holds_up_the_recorder():
    recorder, gate = ListSink(), threading.Event()
    preview = ListSink(gate=gate)
    fan = FanOut([Outlet(recorder, "recorder"), Outlet(preview, "preview", SinkPolicy.DROP_OLDEST, depth=2)])
    for i in range(50):
        fan.write(_redacted(i))  # would block forever here if the preview could hold redaction up
    gate.set()
    fan.close()
    assert recorder.written == list(range(50))
    assert preview.written[-2:] == [48, 49] and preview.written == sorted(preview.written)  # the newest, in order
    assert fan.skipped()["preview"] == 50 - len(preview.written) > 0 and fan.skipped()["recorder"] == 0


def test_a_failing_preview_ends_only_itself_and_a_failing_recorder_ends_the_run():
    recorder, preview = ListSink(), ListSink(fail_at=-1)  # fails on whichever frame reaches it first
    fan = FanOut([Outlet(recorder, "recorder"), Outlet(preview, "preview", SinkPolicy.DROP_OLDEST)])
    for i in range(20):
        fan.write(_redacted(i))
    fan.close()
    assert recorder.written == list(range(20)) and preview.written == [] and preview.closed
    assert fan.failed() == ["preview"]

    recorder, preview = ListSink(fail_at=3), ListSink()
    fan = FanOut([Outlet(recorder, "recorder"), Outlet(preview, "preview", SinkPolicy.DROP_OLDEST)])
    with pytest.raises(OSError, match="disk full"):
        try:
            for i in range(50):
                fan.write(_redacted(i))
        finally:
            fan.close()
    assert recorder.closed and preview.closed


def test_no_sink_accepts_a_raw_frame():
    fan = FanOut([Outlet(ListSink(), "recorder"), Outlet(ListSink(), "preview", SinkPolicy.DROP_OLDEST)])
    raw = Frame(np.zeros((4, 4, 3), np.uint8), 0, 0, dt.datetime.now(dt.timezone.utc))
    with pytest.raises(TypeError):
        fan.write(raw)
    fan.close()
