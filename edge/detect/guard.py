"""Runs all detectors on a frame under a deadline and turns any failure into a verdict.

The result is either `Detections` or a `DetectionFailure` with the reason; it never
raises. A detector that raises, returns something that is not valid `Detections`,
or overruns the deadline fails the frame, and the caller redacts it whole. After a
timeout the stuck call keeps its worker; frames that arrive while it is still busy
fail at once instead of piling up behind it. Both are marked `timed_out`, so a run
can say how many frames the deadline cost (`detect.timeout_ms` live,
`detect.offline_timeout_ms` for files; see `edge.detect.factory.guarded`).
"""
from __future__ import annotations

import concurrent.futures as futures
import logging

import numpy as np

from edge.detect import Detector
from edge.detect.mirror import flip_boxes, merge_looks
from edge.types import DetectionFailure, Detections

log = logging.getLogger(__name__)


class GuardedDetector:
    """All detectors on one frame under one deadline; `side_by_side` runs them in threads of their own.

    Side by side, each model (with one onnxruntime thread, `detect.intra_op_threads: 1`) uses a core
    of its own instead of the models taking turns at all cores, where every model's small layers
    leave cores idle.

    `mirror` (`detect.mirror`) says when the detectors that take it (`mirrored_look = True`: the
    face union and the whole-frame plate pass) look again at the flipped image (`edge.detect.mirror`):
    `always` (stills, and every `mirror_every`-th frame), for `still` images only (`stills`), or never
    (`off`).
    """

    def __init__(self, detectors: list[Detector], timeout_s: float, side_by_side: bool = False,
                 mirror: str = "off", mirror_every: int = 1) -> None:
        self._detectors = detectors
        self.timeout_s = timeout_s
        self._mirror = mirror
        self._mirror_every = mirror_every
        self._frames = 0  # frames (not stills) detected: under `always`, every `mirror_every`-th looks twice
        self._executor = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
        self._models = (futures.ThreadPoolExecutor(max_workers=len(detectors), thread_name_prefix="model")
                        if side_by_side and len(detectors) > 1 else None)
        self._pending: futures.Future | None = None

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    def detect(self, image_bgr: np.ndarray, still: bool = False) -> Detections | DetectionFailure:
        """Every detector's boxes on `image_bgr` (a `still` photo gets the mirrored look under `stills`), or
        the reason the frame cannot be trusted."""
        if self._pending is not None and not self._pending.done():
            return DetectionFailure("detector still busy after an earlier timeout", timed_out=True)
        mirrored = self._mirrored(still)
        self._pending = self._executor.submit(self._run_all, image_bgr, mirrored, still)
        try:
            return self._pending.result(timeout=self.timeout_s)
        except futures.TimeoutError:
            log.warning("detection exceeded %.0f ms; frame fails closed", self.timeout_s * 1000)
            return DetectionFailure(f"timeout after {self.timeout_s * 1000:.0f} ms", timed_out=True)
        except Exception as exc:  # noqa: BLE001 - any detector error must fail closed, never crash past redaction
            log.warning("detector error, frame fails closed: %s: %s", type(exc).__name__, exc)
            return DetectionFailure(f"{type(exc).__name__}: {exc}")

    def start_video(self) -> None:
        """A new video begins: its first keyframe gets the mirrored look (under `always`), whatever the detector
        saw before, so an output does not depend on which inputs a worker had done."""
        self._frames = 0

    def _mirrored(self, still: bool) -> bool:
        """Whether this image gets the mirrored look: a still under `stills` or `always`, a video's frame under
        `always` on every `mirror_every`-th frame of the video."""
        if still:
            return self._mirror in ("stills", "always")
        if self._mirror != "always":
            return False
        turn = self._frames % self._mirror_every == 0
        self._frames += 1
        return turn

    def _run_all(self, image_bgr: np.ndarray, mirrored: bool = False, still: bool = False) -> Detections:
        flipped = np.ascontiguousarray(image_bgr[:, ::-1]) if mirrored else None
        if self._models is None:
            found = [_look(detector, image_bgr, flipped, still) for detector in self._detectors]
        else:  # every model's result is awaited: one that raises fails the frame like any other error
            jobs = [self._models.submit(_look, d, image_bgr, flipped, still) for d in self._detectors]
            found = [job.result() for job in jobs]
        for detector, part in zip(self._detectors, found):
            if not isinstance(part, Detections):
                raise TypeError(f"{detector.name} returned {type(part).__name__}, not Detections")
        return Detections.merge(found)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._models is not None:
            self._models.shutdown(wait=False, cancel_futures=True)


def _look(detector: Detector, image_bgr: np.ndarray, flipped: np.ndarray | None, still: bool = False) -> Detections:
    """One detector's boxes (a `still` photo by the detector's `detect_still` where it has one: the plate
    model's enlarged tiles, the face union's step back, looks that a video's frame rate cannot pay); with a
    `flipped` copy of the image, merged with what the same look finds there (for the detectors that take a
    mirrored look)."""
    for_stills = getattr(detector, "detect_still", None) if still else None
    look = for_stills if for_stills is not None else detector.detect
    found = look(image_bgr)
    if flipped is None or not getattr(detector, "mirrored_look", False) or not isinstance(found, Detections):
        return found
    again = look(flipped)
    if not isinstance(again, Detections):
        return again  # checked, and failed closed, by the caller
    width = image_bgr.shape[1]
    return merge_looks(found, Detections(flip_boxes(again.xyxy, width), again.score, again.label))
