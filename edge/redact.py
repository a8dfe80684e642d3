"""Redaction: the only place a `RedactedFrame` is made. It fails closed.

Given a frame and the detector verdict, hide every detected region (ellipses for
faces, rectangles for plates, each grown by its class's mask scale). If detection failed, or hiding
a region raises, the whole frame is blurred (or dropped, if configured) and that is
recorded in the frame's counts. Pixels are changed in place, so the raw image does
not outlive this call inside the frame either.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from edge.config import RedactConfig
from edge.detect.guard import DetectionFailure
from edge.types import Detections, Frame, Label, RedactedFrame, RedactionCounts, redaction_token

log = logging.getLogger(__name__)

# Blur strength relative to the box: sigma is this share of the box's longer side.
# At 0.15 the characters of a plate (about half its height) smear into each other.
_SIGMA_PER_BOX_SIDE = 0.15
_MIN_SIGMA = 4.0
# Whole-frame blur when detection failed: coarse enough that no face or plate survives.
_SIGMA_PER_FRAME_SIDE = 1 / 30
_PIXELATE_BLOCKS = 8


def grow_boxes(xyxy: np.ndarray, scale: float | np.ndarray, width: int | None, height: int | None) -> np.ndarray:
    """Scale boxes about their centres, round outwards to whole pixels and clip to the frame.

    `scale` is one factor for all boxes or one per box; `width`/`height` None leaves them unclipped.
    """
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) * np.reshape(scale, (-1, 1)) / 2
    grown = np.concatenate([np.floor(centre - half), np.ceil(centre + half)], axis=1)
    if width is not None and height is not None:
        grown[:, [0, 2]] = np.clip(grown[:, [0, 2]], 0, width)
        grown[:, [1, 3]] = np.clip(grown[:, [1, 3]], 0, height)
    return grown.astype(np.int64)


def strong_blur(region: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of any strength at a bounded cost: blur a downscaled copy, scale back up."""
    height, width = region.shape[:2]
    factor = max(1.0, sigma / 2.0)
    small_w, small_h = max(1, round(width / factor)), max(1, round(height / factor))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=min(sigma, 2.0))
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def pixelate(region: np.ndarray, blocks: int = _PIXELATE_BLOCKS) -> np.ndarray:
    height, width = region.shape[:2]
    block = max(2, max(height, width) // blocks)
    small = cv2.resize(region, (max(1, width // block), max(1, height // block)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def region_masks(detections: Detections, shape: tuple[int, int], config: RedactConfig
                 ) -> list[tuple[tuple[int, int, int, int], np.ndarray | None]]:
    """Each grown box in whole pixels, clipped to the frame, with its mask inside the box (None = all of it).

    A face ellipse is drawn on the whole grown box before clipping: drawn on the clipped box it
    would shrink to fit and leave the corners of a face at the frame's edge uncovered.
    """
    height, width = shape
    scales = np.where(detections.label == Label.FACE, config.face_mask_scale, config.plate_mask_scale)
    regions = []
    for (u1, v1, u2, v2), label in zip(grow_boxes(detections.xyxy, scales, None, None).tolist(), detections.label):
        x1, y1, x2, y2 = max(u1, 0), max(v1, 0), min(u2, width), min(v2, height)
        if x2 <= x1 or y2 <= y1:
            continue
        mask = None
        if label == Label.FACE and config.face_shape == "ellipse":
            canvas = np.zeros((v2 - v1, u2 - u1), np.uint8)
            centre = ((u2 - u1 - 1) / 2, (v2 - v1 - 1) / 2)
            cv2.ellipse(canvas, (centre, (float(u2 - u1), float(v2 - v1)), 0), 255, thickness=-1)
            mask = canvas[y1 - v1:y2 - v1, x1 - u1:x2 - u1].astype(bool)
        regions.append(((x1, y1, x2, y2), mask))
    return regions


def redaction_mask(detections: Detections, shape: tuple[int, int], config: RedactConfig) -> np.ndarray:
    """The full-frame boolean mask of pixels that redaction hides, for measuring coverage."""
    full = np.zeros(shape, dtype=bool)
    for (x1, y1, x2, y2), region_mask in region_masks(detections, shape, config):
        full[y1:y2, x1:x2] |= True if region_mask is None else region_mask
    return full


class Redactor:
    def __init__(self, config: RedactConfig) -> None:
        self._config = config

    def redact(self, frame: Frame, verdict: Detections | DetectionFailure) -> RedactedFrame | None:
        """The redacted frame, or None when a failed frame is to be dropped."""
        image = frame.image_bgr
        if isinstance(verdict, Detections):
            try:
                self._hide_regions(image, verdict)
                counts = RedactionCounts(faces=verdict.objects(Label.FACE), plates=verdict.objects(Label.PLATE))
                return self._seal(frame, counts, verdict)
            except (cv2.error, ValueError, IndexError) as exc:
                log.error("redaction of frame %d failed (%s); hiding the whole frame", frame.index, exc)
        if self._config.on_failure == "drop_frame":
            image.fill(0)  # nothing of it stays in memory either
            return None
        self._hide_whole(image)
        return self._seal(frame, RedactionCounts(whole_frame=True))

    def _seal(self, frame: Frame, counts: RedactionCounts, hidden: Detections | None = None) -> RedactedFrame:
        return RedactedFrame(frame.image_bgr, frame.index, frame.t_mono_ns, frame.t_utc, counts, frame.fix,
                             hidden if hidden is not None else Detections.empty(), _token=redaction_token())

    def _hide_whole(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._config.mode == "fill":
            image.fill(0)
        elif self._config.mode == "pixelate":
            image[:] = pixelate(image, blocks=32)
        else:
            image[:] = strong_blur(image, sigma=max(height, width) * _SIGMA_PER_FRAME_SIDE)

    def _hide_regions(self, image: np.ndarray, detections: Detections) -> None:
        for (x1, y1, x2, y2), region_mask in region_masks(detections, image.shape[:2], self._config):
            region = image[y1:y2, x1:x2]
            hidden = self._hide(region)
            if region_mask is None:
                region[:] = hidden
            else:
                np.copyto(region, hidden, where=region_mask[..., None])

    def _hide(self, region: np.ndarray) -> np.ndarray:
        mode = self._config.mode
        if mode == "fill":
            return np.zeros_like(region)
        if mode == "pixelate":
            return pixelate(region)
        sigma = max(_MIN_SIGMA, _SIGMA_PER_BOX_SIDE * max(region.shape[:2]))
        return strong_blur(region, sigma)
