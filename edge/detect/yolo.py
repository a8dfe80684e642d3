"""YOLOv8 licence-plate detector: letterbox preprocessing and a numpy decoder of [1, 4+C, N].

The vendored export takes RGB/255 on a 640x640 letterbox padded with 114 and outputs
centre-x, centre-y, width, height and one class score per anchor (no objectness).
"""
from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from edge.config import DetectConfig
from edge.detect.boxes import clip_boxes, cxcywh_to_xyxy, nms
from edge.detect.mirror import merge_looks
from edge.detect.session import LetterboxModel
from edge.types import Detections, Label


def decode_yolov8(output: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy in letterbox pixels) and best-class scores above threshold, before NMS."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
        raise ValueError(f"YOLOv8 output must be [1, 4+classes, anchors], got {list(output.shape)}")
    rows = output[0].T  # (anchors, 4 + classes)
    scores = rows[:, 4:].max(axis=1)
    keep = scores >= score_threshold
    return cxcywh_to_xyxy(rows[keep, :4]).astype(np.float32), scores[keep].astype(np.float32)


def tile_windows(width: int, height: int, tile: int, top: float, bottom: float,
                 min_overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """`(x, y, w, h)` windows of at most `tile` pixels covering the band from `top` to `bottom`
    (shares of the height), overlapping by at least `min_overlap` of a tile so that a plate cut
    by one window's edge is whole in its neighbour."""
    y0, y1 = int(round(height * top)), int(round(height * bottom))
    windows = []
    for start_y, size_y in _spans(y0, y1 - y0, tile, min_overlap):
        for start_x, size_x in _spans(0, width, tile, min_overlap):
            windows.append((start_x, start_y, size_x, size_y))
    return windows


def _spans(start: int, length: int, tile: int, min_overlap: float) -> list[tuple[int, int]]:
    if length <= tile:
        return [(start, length)]
    step_max = tile * (1 - min_overlap)
    count = int(np.ceil((length - tile) / step_max)) + 1
    step = (length - tile) / (count - 1)
    return [(start + int(round(i * step)), tile) for i in range(count)]


class PlateYoloDetector(LetterboxModel):
    """Plates in the whole frame, plus (optionally) in native-resolution tiles of the road band.

    The model sees 640x640: a 1280-wide frame is halved, so a 16 px plate becomes 8 px, below
    what it finds. Tiles give distant plates their full size, at one inference per tile;
    `tile_every` spends that on every n-th call only (the tracker holds boxes in between).
    """

    name = "plate_yolov8n"
    mirrored_look = True  # see edge.detect.mirror

    @classmethod
    def from_config(cls, session: ort.InferenceSession, config: DetectConfig) -> PlateYoloDetector:
        plates = config.plates
        return cls(session, plates.score_threshold, plates.nms_iou, plates.tiles, plates.road_top,
                   plates.road_bottom, plates.tile_every, plates.photo_tile_scale)

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float,
                 tiles: str = "none", road_top: float = 0.0, road_bottom: float = 1.0, tile_every: int = 1,
                 photo_tile_scale: float = 0.0) -> None:
        super().__init__(session, score_threshold, nms_iou)
        self._band = (0.0, 1.0) if tiles == "full" else (road_top, road_bottom)
        self._tiles = tiles
        self._tile_every = tile_every
        self._photo_tile_scale = photo_tile_scale
        self._calls = 0

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        xyxy, score = self.detect_window(image_bgr)
        found = _plates(clip_boxes(xyxy, width, height), score)
        if self._use_tiles(width, height):
            # Merged into enclosing boxes, never NMS'd against the whole-frame boxes: a tighter tile box
            # must not take the place of a whole-frame box that hid more.
            in_tiles, tile_score = self._in_tiles(image_bgr, *self._band)
            found = merge_looks(found, _plates(clip_boxes(in_tiles, width, height), tile_score))
        self._calls += 1
        return found

    def detect_still(self, image_bgr: np.ndarray) -> Detections:
        """A photo: the frame's passes, and 640 px tiles of the photo enlarged by `photo_tile_scale`.

        Measured on the 38 dev plates the default set left bare: tiles of the photo at 1.25x found
        14 of them (native-size tiles 8, 1.5x 12), among them large, sharp plates the whole-photo
        pass scores near 0; what the model sees best is a plate large in a tile, not in a shrunk photo.
        A photo has no frame rate to keep, so it can pay the six or so inferences (twice, with the
        mirrored look, which takes this look too: three more plates). What the tiles find
        is merged with the whole-photo boxes into enclosing boxes (`merge_looks`), never NMS'd against
        them: a tighter tile box must not take the place of a box that hid more. (`detect` counts the
        call, so a detector that also serves a video's frames shifts its `tile_every` turn by one.)
        """
        found = self.detect(image_bgr)
        scale = self._photo_tile_scale
        height, width = image_bgr.shape[:2]
        if scale <= 0 or max(width, height) * scale <= self._size:
            return found  # the enlarged photo fits one window: the whole-photo pass saw it that large
        enlarged = cv2.resize(image_bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
        in_tiles, score = self._in_tiles(enlarged, 0.0, 1.0)
        return merge_looks(found, _plates(clip_boxes(in_tiles / np.float32(scale), width, height), score))

    def _in_tiles(self, image_bgr: np.ndarray, top: float, bottom: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (in the image's pixels, not merged across tiles) and scores found in the 640 px tiles
        covering the band from `top` to `bottom` of the image."""
        height, width = image_bgr.shape[:2]
        parts, scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
        for x, y, w, h in tile_windows(width, height, self._size, top, bottom):
            found, found_score = self.detect_window(image_bgr[y:y + h, x:x + w])
            parts.append(found + np.array([x, y, x, y], np.float32))
            scores.append(found_score)
        return np.concatenate(parts).astype(np.float32), np.concatenate(scores).astype(np.float32)

    def _use_tiles(self, width: int, height: int) -> bool:
        if self._tiles == "none" or self._calls % self._tile_every:
            return False
        # Tiles only help when the whole-frame pass shrinks the image noticeably.
        return max(width, height) > 1.25 * self._size

    def detect_window(self, image_bgr: np.ndarray, laid_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (in the window's pixels) and scores after NMS for one letterboxed (or `laid_out`, see
        `LetterboxModel._blob`) window."""
        blob, geometry = self._blob(image_bgr, laid_out)
        (output,) = self._session.run(None, {self._input_name: blob})
        xyxy, score = decode_yolov8(output, self._score_threshold)
        keep = nms(xyxy, score, self._nms_iou)
        return geometry.to_source(xyxy[keep]), score[keep]


def _plates(xyxy: np.ndarray, score: np.ndarray) -> Detections:
    return Detections(xyxy, score, np.full(len(score), Label.PLATE))
