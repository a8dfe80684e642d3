import datetime as dt

import numpy as np
import pytest

from edge.config import RedactConfig
from edge.pipeline import BackgroundSink
from edge.redact import Redactor
from edge.types import Detections, Frame


def _redacted(index: int):
    frame = Frame(np.zeros((4, 4, 3), np.uint8), index, 0, dt.datetime.now(dt.timezone.utc))
    return Redactor(RedactConfig()).redact(frame, Detections.empty())


class ListSink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.written, self.dropped, self.closed, self._fail_at = [], 0, False, fail_at

    def write(self, frame) -> None:
        if frame.index == self._fail_at:
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
