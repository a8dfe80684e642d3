"""Box geometry shared by the decoders: NMS (OpenCV), letterbox, resizing and clipping."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first (OpenCV's
    `cv2.dnn.NMSBoxes`; tests/unit/test_boxes.py checks it against a plain numpy version)."""
    if len(xyxy) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = np.asarray(xyxy, dtype=np.float64)
    sizes = np.maximum(boxes[:, 2:] - boxes[:, :2], 0.0)  # a degenerate box has no area, not a negative one
    xywh = np.concatenate([boxes[:, :2], sizes], axis=1)
    # Every box counts (the decoders applied the score thresholds); OpenCV keeps only scores strictly above
    # a threshold of at least 0, so the scores are shifted by 1, which keeps their order.
    shifted = np.asarray(score, dtype=np.float64) + 1.0
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), shifted.tolist(), 0.0, float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two (N,4) and (M,4) xyxy arrays."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    out = xyxy.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


@dataclass(frozen=True)
class Letterbox:
    """How an image was scaled and padded into a square model input, to map boxes back."""

    scale: float
    pad_x: float
    pad_y: float

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        out = xyxy.astype(np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


# The coarsest stride of the detectors' grids: an input that takes any size is a multiple of it.
GRID = 32


def letterbox(image: np.ndarray, size: int, pad_value: int = 114, square: bool = True,
              stride: int = GRID) -> tuple[np.ndarray, Letterbox]:
    """Fit `image` into a size x size square keeping its aspect, centred, padded with `pad_value`.

    For a model that takes any size (`square=False`), only as much of the square's padding is kept as
    puts the picture where it sat relative to the model's `stride` grid: a 16:9 frame becomes 640x384
    (12 rows above, as the square's 140 are 12 modulo 32), a 4:3 photo 640x512. The same pixels land on
    the same anchor cells as in the square, so the model finds what it found there; small objects are
    that sensitive (a plate 6 px high was found or not as a canvas moved by 16 rows).
    """
    height, width = image.shape[:2]
    scale = min(size / width, size / height)
    new_w, new_h = round(width * scale), round(height * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if scale != 1 else image
    top, left = int(round((size - new_h) / 2 - 0.1)), int(round((size - new_w) / 2 - 0.1))
    out_w, out_h = size, size
    if not square:
        top, left = top % stride, left % stride
        out_h, out_w = -(-(top + new_h) // stride) * stride, -(-(left + new_w) // stride) * stride
    canvas = np.full((out_h, out_w, 3), pad_value, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x=float(left), pad_y=float(top))


def letterbox_blob(image_bgr: np.ndarray, size: int, square: bool = True) -> tuple[np.ndarray, Letterbox]:
    """The YOLO family's input: the image letterboxed into size x size (pad 114; see `letterbox` for
    `square=False`), RGB / 255, as a float32 [1, 3, H, W] blob; and the geometry that maps its boxes back."""
    boxed, geometry = letterbox(image_bgr, size, square=square)
    return to_blob(boxed), geometry


def to_blob(image_bgr: np.ndarray) -> np.ndarray:
    """An image already laid out for a YOLO-family model as its float32 [1, 3, H, W] RGB / 255 input."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    return rgb.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)


def resize_for_stride(image: np.ndarray, long_side: int, stride: int) -> tuple[np.ndarray, float]:
    """Shrink so the long side is at most `long_side`, then pad right/bottom to a multiple of `stride`.

    Returns the padded image and the scale applied (boxes / scale map back to the source).
    """
    height, width = image.shape[:2]
    scale = min(1.0, long_side / max(height, width))
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    padded_h, padded_w = -(-h // stride) * stride, -(-w // stride) * stride
    if (padded_h, padded_w) != (h, w):
        image = cv2.copyMakeBorder(image, 0, padded_h - h, 0, padded_w - w, cv2.BORDER_CONSTANT, value=0)
    return image, scale
