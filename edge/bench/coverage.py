"""Coverage metrics: how much of each ground-truth box the applied redaction mask hides."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.types import Label

# Box-height bands in pixels, as researchers report them.
SIZE_BANDS = (("tiny", 0, 16), ("small", 16, 32), ("medium", 32, 96), ("large", 96, float("inf")))


def box_coverage(mask: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Share of each box's pixels (rounded to whole pixels) that the mask covers, 0..1."""
    height, width = mask.shape
    out = np.zeros(len(xyxy), dtype=np.float64)
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        left, top = int(np.clip(np.floor(x1), 0, width)), int(np.clip(np.floor(y1), 0, height))
        right, bottom = int(np.clip(np.ceil(x2), 0, width)), int(np.clip(np.ceil(y2), 0, height))
        area = (right - left) * (bottom - top)
        if area <= 0:
            continue
        covered = integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
        out[i] = covered / area
    return out


@dataclass
class CoverageTally:
    """Coverage of every ground-truth box seen, by label and size band."""

    coverage: dict[int, list[float]] = field(default_factory=lambda: {int(l): [] for l in Label})
    heights: dict[int, list[float]] = field(default_factory=lambda: {int(l): [] for l in Label})

    def add(self, mask: np.ndarray, xyxy: np.ndarray, label: np.ndarray) -> np.ndarray:
        covered = box_coverage(mask, xyxy)
        for value, lab, box in zip(covered, label, xyxy):
            self.coverage[int(lab)].append(float(value))
            self.heights[int(lab)].append(float(box[3] - box[1]))
        return covered

    def recall(self, label: Label, tau: float = 0.9) -> tuple[float, int]:
        values = np.array(self.coverage[int(label)])
        return (float((values >= tau).mean()) if values.size else float("nan")), int(values.size)

    def recall_by_size(self, label: Label, tau: float = 0.9) -> dict[str, tuple[float, int]]:
        values = np.array(self.coverage[int(label)])
        heights = np.array(self.heights[int(label)])
        result = {}
        for name, low, high in SIZE_BANDS:
            band = (heights >= low) & (heights < high)
            result[name] = (float((values[band] >= tau).mean()) if band.any() else float("nan"), int(band.sum()))
        return result
