"""Head geometry: from a face detector's face box, or from a person box, to the region to hide.

The development data box whole heads (hair, ears, chin), while face detectors box the face:
measured on 458 matched faces of `faces-roboflow-sample`, the head is a median 1.34x as wide
and 1.44x as tall as YuNet's box, centred on it within a few percent (YOLO5Face 1.24x/1.31x,
CenterFace 1.36x/1.45x). A person box says where a head is even when no face detector
fires (a head seen from behind, a masked face): its top, about half the box wide (median
0.43 of the width, 90th percentile 0.65, offset up to a quarter of the width either way).
"""
from __future__ import annotations

import numpy as np

from edge.detect.boxes import iou_matrix
from edge.geometry import scale_boxes


def face_to_head(xyxy: np.ndarray, width: float, height: float, raise_: float) -> np.ndarray:
    """Face boxes widened by `width` and `height` about their centre, the centre raised by `raise_` of the face
    height."""
    return scale_boxes(xyxy.astype(np.float32), np.float32(width), np.float32(height),
                       raise_share=raise_).astype(np.float32)


# A person box that reaches the frame's bottom edge is someone close to the camera, cut off: the box
# is mostly head and shoulders, and the head may sit anywhere in its upper half (measured on the dev
# photos: +1.5 points of heads hidden for +1.4 points of area).
CUT_WIDTH_SHARE = 0.8
CUT_HEIGHT_SHARE = 0.5
# A person box less than this many times as tall as it is wide is a bust too, wherever it ends: someone
# close to the camera seen down to the chest, or cut off by a car or a window rather than the frame.
# Measured on the dev photos (402 heads matched to the person box holding them): under 1.5 the head's
# bottom lies at a median 0.6-0.7 of the box's height (90th percentile 0.8-0.9), not the 0.3 a standing
# body allows; only about half of such boxes reach the frame's bottom. From 1.5 to 2 the median is 0.42
# (90th percentile 0.87): 1.6 takes in the squattest of those too, where the standing rule is furthest
# off. On the dashcam-like drive (`scripts/eval_cover.py`) two masked faces no face model found leaked
# for 17 frames each under the standing rule, and none under this one.
BUST_ASPECT = 1.6


def person_heads(person_xyxy: np.ndarray, width_share: float, height_share: float,
                 frame_height: int | None = None) -> np.ndarray:
    """The head region at the top of each person box: `width_share` of its width, centred, and as tall as
    1.3 head widths but never more than `height_share` of the person (a whole body is about 7 heads tall).
    A bust, a box that reaches `frame_height` (someone cut off close to the camera) or one under
    BUST_ASPECT tall for its width, gets the wider and taller region of CUT_WIDTH_SHARE x CUT_HEIGHT_SHARE."""
    x1, y1, x2, y2 = person_xyxy.T
    bust = (y2 - y1) < BUST_ASPECT * (x2 - x1)
    if frame_height is not None:
        bust |= y2 >= frame_height - 2
    head_w = np.where(bust, max(width_share, CUT_WIDTH_SHARE), width_share) * (x2 - x1)
    head_h = np.where(bust, max(height_share, CUT_HEIGHT_SHARE) * (y2 - y1),
                      np.minimum(height_share * (y2 - y1), 1.3 * head_w))
    cx = (x1 + x2) / 2
    return np.stack([cx - head_w / 2, y1, cx + head_w / 2, y1 + head_h], axis=1).astype(np.float32)


# Boxes of one object, from two face models or from two looks at one image, overlap far more than this;
# two neighbours in a crowd rarely do. The face union and every merge of looks (`edge.detect.mirror`) use it.
MERGE_IOU = 0.3


def merge_overlapping(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of several models for one object become the box enclosing them all, with the best score.

    Unlike NMS, which keeps one box and throws away the area only the others covered, this never
    hides less than the union of what the models found.
    """
    if len(xyxy) < 2:
        return xyxy, score
    overlaps = iou_matrix(xyxy, xyxy) > iou_threshold
    group = np.arange(len(xyxy))
    changed = True
    while changed:  # connected components: each box takes the smallest group id among its overlaps
        smallest = np.where(overlaps, group[None, :], len(xyxy)).min(axis=1)
        changed = bool((smallest < group).any())
        group = np.minimum(group, smallest)
        group = group[group]
    ids = np.unique(group)
    merged = np.stack([np.concatenate([xyxy[group == g, :2].min(axis=0), xyxy[group == g, 2:].max(axis=0)])
                       for g in ids]).astype(np.float32)
    return merged, np.array([score[group == g].max() for g in ids], np.float32)
