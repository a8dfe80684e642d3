"""Segment events: what the recorder announces when a segment is finished or locked.

Subscribers (an uploader, a web app, a test) get the segment's paths and its typed
sidecar. They are called in the recorder's thread, in order, right after the files are
final, so they must be quick: one with slow work (an upload) queues it for a thread of its
own. A subscriber that raises is logged and unsubscribed; recording never stops for it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.record.sidecar import Sidecar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentEvent:
    kind: Literal["finished", "locked"]  # locked: moved into locked/ (after it was finished, or as it finished)
    video_path: Path
    sidecar_path: Path
    sidecar: Sidecar

    @property
    def locked(self) -> bool:
        return self.sidecar.locked


SegmentListener = Callable[[SegmentEvent], None]


class SegmentEvents:
    def __init__(self) -> None:
        self._listeners: list[SegmentListener] = []

    def subscribe(self, listener: SegmentListener) -> None:
        self._listeners.append(listener)

    def publish(self, event: SegmentEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - a subscriber's bug must not stop recording
                log.warning("segment subscriber %r failed and is unsubscribed: %s", listener, exc)
                self._listeners.remove(listener)
