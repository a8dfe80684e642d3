"""The second line: persons and vehicles from a COCO detector, turned into what must be hidden.

A face detector gives up on a head seen from behind, a masked face or a face in a crowd; a
plate detector on the whole frame gives up on a plate a few pixels high. A general detector
still finds the person and the car. Each person's head region (`edge.detect.heads`) is hidden
as a face; each vehicle is cut out at native resolution (a margin around it), the cut-outs are
packed side by side into 640 px wide canvases (as tall as their cut-outs need), and the plate
model searches those, so a distant car's plate is seen at its real size at the cost of one or
two plate inferences per keyframe, not one per vehicle or per blind tile.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.config import PeopleConfig
from edge.detect.boxes import GRID
from edge.detect.coco import PERSON, CocoDetector
from edge.detect.heads import person_heads
from edge.detect.yolo import PlateYoloDetector
from edge.types import Detections, Label

MARGIN = 0.1  # share of a vehicle's size added on each side: plates sit at the box's edge
GAP = 4  # pixels of padding between cut-outs, so one plate box cannot span two vehicles
PAD_VALUE = 114  # the plate model's letterbox grey
MIN_SIDE = 12  # vehicles smaller than this hold no readable plate


@dataclass(frozen=True)
class Placement:
    """One vehicle cut-out: where it came from in the frame and where it sits on a canvas."""

    canvas: int
    source_xyxy: tuple[int, int, int, int]  # in the frame, whole pixels
    x: int  # top-left corner on the canvas
    y: int
    scale: float  # canvas pixels per frame pixel (1 unless the cut-out is larger than a canvas)

    @property
    def size(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.source_xyxy
        return round((x2 - x1) * self.scale), round((y2 - y1) * self.scale)


def cutouts(vehicle_xyxy: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Each vehicle box grown by MARGIN, in whole pixels, clipped to the frame; tiny ones left out."""
    boxes = []
    for x1, y1, x2, y2 in vehicle_xyxy.tolist():
        dx, dy = MARGIN * (x2 - x1), MARGIN * (y2 - y1)
        box = (max(0, int(x1 - dx)), max(0, int(y1 - dy)), min(width, int(np.ceil(x2 + dx))),
               min(height, int(np.ceil(y2 + dy))))
        if min(box[2] - box[0], box[3] - box[1]) >= MIN_SIDE:
            boxes.append(box)
    return boxes


def pack(boxes: list[tuple[int, int, int, int]], canvas: int, max_canvases: int) -> list[Placement]:
    """Shelf packing, tallest first, into at most `max_canvases` square canvases of side `canvas`.

    A cut-out larger than a canvas is scaled down to fit one; what does not fit is left to the
    whole-frame pass.
    """
    canvases: list[list[_Shelf]] = []
    placements = []
    for x1, y1, x2, y2 in sorted(boxes, key=lambda b: b[3] - b[1], reverse=True):
        scale = min(1.0, canvas / (x2 - x1), canvas / (y2 - y1))
        spot = _place(canvases, round((x2 - x1) * scale), round((y2 - y1) * scale), canvas, max_canvases)
        if spot is not None:
            placements.append(Placement(spot[0], (x1, y1, x2, y2), spot[1], spot[2], scale))
    return placements


@dataclass
class _Shelf:
    top: int
    height: int
    free_x: int


def _place(canvases: list[list[_Shelf]], w: int, h: int, side: int, max_canvases: int
           ) -> tuple[int, int, int] | None:
    """(canvas, x, y) for a w x h cut-out: on a shelf with room, on a new shelf, or on a new canvas."""
    for index, shelves in enumerate(canvases):
        for shelf in shelves:
            if h <= shelf.height and shelf.free_x + w <= side:
                x, shelf.free_x = shelf.free_x, shelf.free_x + w + GAP
                return index, x, shelf.top
        bottom = shelves[-1].top + shelves[-1].height + GAP
        if bottom + h <= side:
            shelves.append(_Shelf(bottom, h, w + GAP))
            return index, 0, bottom
    if len(canvases) < max_canvases:
        canvases.append([_Shelf(0, h, w + GAP)])
        return len(canvases) - 1, 0, 0
    return None


def render(image_bgr: np.ndarray, placements: list[Placement], index: int, side: int, rows: int | None = None
           ) -> np.ndarray:
    """Canvas `index`: its cut-outs copied (or scaled) from the frame onto grey, `side` wide and `rows`
    high (default `side`; see `rows_used`)."""
    canvas = np.full((side if rows is None else rows, side, 3), PAD_VALUE, np.uint8)
    for p in placements:
        if p.canvas != index:
            continue
        x1, y1, x2, y2 = p.source_xyxy
        w, h = p.size
        crop = image_bgr[y1:y2, x1:x2]
        canvas[p.y:p.y + h, p.x:p.x + w] = crop if p.scale == 1.0 else cv2.resize(crop, (w, h),
                                                                                   interpolation=cv2.INTER_AREA)
    return canvas


def rows_used(placements: list[Placement], index: int, stride: int = GRID) -> int:
    """Canvas `index`'s rows down to its lowest cut-out, rounded up to a multiple of `stride`: all a model
    that takes any size needs to search. A few small cars fill a strip, not a 640 px square, and each
    cut-out keeps its place on the model's grid."""
    bottom = max((p.y + p.size[1] for p in placements if p.canvas == index), default=1)
    return -(-bottom // stride) * stride


def to_frame(xyxy: np.ndarray, score: np.ndarray, placements: list[Placement], index: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes found on canvas `index`, each given to the cut-out holding its centre and mapped to the frame."""
    boxes, scores = [], []
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    for p in placements:
        if p.canvas != index:
            continue
        w, h = p.size
        inside = ((centre[:, 0] >= p.x) & (centre[:, 0] < p.x + w) & (centre[:, 1] >= p.y) & (centre[:, 1] < p.y + h))
        if not inside.any():
            continue
        local = xyxy[inside] - np.array([p.x, p.y, p.x, p.y], np.float32)
        local = np.clip(local, 0, [w, h, w, h])  # a box cannot reach past its own vehicle's cut-out
        origin = np.array(p.source_xyxy[:2] * 2, np.float32)
        boxes.append(local / p.scale + origin)
        scores.append(score[inside])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32)


class SecondLine:
    """Persons' heads (label FACE) and plates found inside vehicles (label PLATE)."""

    name = "second_line"

    def __init__(self, coco: CocoDetector, plates: PlateYoloDetector | None, config: PeopleConfig,
                 every: int = 1) -> None:
        self._coco = coco
        self._plates = plates if config.plates_in_vehicles else None
        self._config = config
        self._every = every
        self._calls = 0

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """What the second line finds; on a live source's skipped keyframes (see `every`), nothing."""
        due = self._calls % self._every == 0
        self._calls += 1
        if not due:
            return Detections.empty()
        xyxy, score, class_id = self._coco.detect(image_bgr)
        parts = []
        if self._config.heads:
            person = class_id == PERSON
            heads = person_heads(xyxy[person], self._config.head_width, self._config.head_height_share,
                                 image_bgr.shape[0])
            parts.append(Detections(heads, score[person], np.full(len(heads), Label.FACE)))
        if self._plates is not None:
            parts.append(self._plates_in(image_bgr, xyxy[class_id != PERSON]))
        return Detections.merge(parts)

    def _plates_in(self, image_bgr: np.ndarray, vehicles: np.ndarray) -> Detections:
        plates = self._plates
        if plates is None:
            return Detections.empty()
        height, width = image_bgr.shape[:2]
        side = plates.input_size
        # The whole-frame pass sees the frame shrunk to `side`; a vehicle it sees 160 px wide or more
        # shows its plate (a fifth to a third of the car's width) at 30-50 px, which it finds.
        shrink = side / max(width, height)
        small = vehicles[(vehicles[:, 2] - vehicles[:, 0]) * shrink < 160]
        placements = pack(cutouts(small, width, height), side, self._config.max_canvases)
        boxes, scores = [], []
        for index in sorted({p.canvas for p in placements}):
            # A model that takes any size searches only the rows the cut-outs fill; a square one the square.
            rows = rows_used(placements, index) if plates.any_size else side
            found, found_score = plates.detect_window(render(image_bgr, placements, index, side, rows), laid_out=True)
            mapped, mapped_score = to_frame(found, found_score, placements, index)
            boxes.append(mapped)
            scores.append(mapped_score)
        if not boxes:
            return Detections.empty()
        xyxy = np.concatenate(boxes)
        return Detections(xyxy, np.concatenate(scores), np.full(len(xyxy), Label.PLATE))
