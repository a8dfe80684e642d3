"""Coverage metrics: how much of each ground-truth box the applied redaction mask hides."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.types import Label

# Box-height bands in pixels, as researchers report them.
SIZE_BANDS = (("tiny", 0, 16), ("small", 16, 32), ("medium", 32, 96), ("large", 96, float("inf")))


def pixel_bounds(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes rounded outwards to whole pixels and clipped to the frame, as int64 (N,4) xyxy."""
    bounds = np.concatenate([np.floor(xyxy[:, :2]), np.ceil(xyxy[:, 2:])], axis=1).reshape(-1, 4)
    bounds[:, [0, 2]] = bounds[:, [0, 2]].clip(0, width)
    bounds[:, [1, 3]] = bounds[:, [1, 3]].clip(0, height)
    return bounds.astype(np.int64)


def box_coverage(mask: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Share of each box's pixels (rounded to whole pixels) that the mask covers, 0..1."""
    out = np.zeros(len(xyxy), dtype=np.float64)
    if len(xyxy) == 0:
        return out
    height, width = mask.shape
    # Counting inside each box's slice costs the boxes' area; a whole-frame integral image cost ~16 ms a 720p frame.
    for i, (left, top, right, bottom) in enumerate(pixel_bounds(np.asarray(xyxy, np.float64), width, height)):
        area = (right - left) * (bottom - top)
        if area <= 0:
            continue
        out[i] = np.count_nonzero(mask[top:bottom, left:right]) / area
    return out


def boxes_mask(xyxy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The (H,W) bool mask of pixels inside any box, with the same pixel rounding as `box_coverage`."""
    height, width = shape
    mask = np.zeros(shape, dtype=bool)
    for left, top, right, bottom in pixel_bounds(np.asarray(xyxy, np.float64), width, height):
        mask[top:bottom, left:right] = True
    return mask


def _share(values: np.ndarray, tau: float) -> float:
    return float((values >= tau).mean()) if values.size else float("nan")


@dataclass
class CoverageTally:
    """Coverage of every ground-truth box seen, by label and size band."""

    coverage: dict[int, list[float]] = field(default_factory=lambda: {int(label): [] for label in Label})
    heights: dict[int, list[float]] = field(default_factory=lambda: {int(label): [] for label in Label})

    def add(self, mask: np.ndarray, xyxy: np.ndarray, label: np.ndarray) -> np.ndarray:
        covered = box_coverage(mask, xyxy)
        self.record(covered, xyxy, label)
        return covered

    def record(self, covered: np.ndarray, xyxy: np.ndarray, label: np.ndarray) -> None:
        """Store already measured coverage (e.g. 1.0 for every box of a frame hidden whole)."""
        for value, lab, box in zip(covered, label, xyxy):
            self.coverage[int(lab)].append(float(value))
            self.heights[int(lab)].append(float(box[3] - box[1]))

    def recall(self, label: Label, tau: float = 0.9) -> tuple[float, int]:
        values = np.array(self.coverage[int(label)])
        return _share(values, tau), int(values.size)

    def curve(self, label: Label, taus: tuple[float, ...] | list[float]) -> list[float]:
        """Recall at each tau; NaN where the label has no boxes."""
        values = np.array(self.coverage[int(label)])
        return [_share(values, tau) for tau in taus]

    def recall_by_size(self, label: Label, tau: float = 0.9) -> dict[str, tuple[float, int]]:
        values = np.array(self.coverage[int(label)])
        heights = np.array(self.heights[int(label)])
        result = {}
        for name, low, high in SIZE_BANDS:
            band = (heights >= low) & (heights < high)
            result[name] = (_share(values[band], tau), int(band.sum()))
        return result
