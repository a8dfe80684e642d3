"""A photo's step back: faces too close for the face models are looked for in the photo shrunk."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from edge.detect.boxes import iou_matrix
from edge.detect.union import FaceUnion
from edge.types import Detections, Label


def _close_up(frame_index: int, face_height: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """A 640 x 640 photo of one of the sample's faces blown up to `fill` of its height, and its head box there."""
    from edge.bench.annotations import load_sample_truth
    from edge.camera import SAMPLE_VIDEO

    truth = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))[frame_index]
    faces = truth.xyxy[truth.label == Label.FACE]
    box = faces[np.argmin(np.abs((faces[:, 3] - faces[:, 1]) - face_height))]
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
    _ok, frame = capture.read()
    capture.release()
    half = (box[3] - box[1]) / fill / 2
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x1, y1 = int(max(0, cx - half)), int(max(0, cy - half))
    x2, y2 = int(min(frame.shape[1], cx + half)), int(min(frame.shape[0], cy + half))
    photo = cv2.resize(frame[y1:y2, x1:x2], (640, 640), interpolation=cv2.INTER_CUBIC)
    sx, sy = 640 / (x2 - x1), 640 / (y2 - y1)
    return photo, np.array([[(box[0] - x1) * sx, (box[1] - y1) * sy, (box[2] - x1) * sx, (box[3] - y1) * sy]],
                           np.float32)


def test_a_face_too_close_for_the_models_is_found_by_the_photo_s_step_back():
    from edge.config import DetectConfig
    from edge.detect.factory import build_detectors

    base = DetectConfig()
    config = replace(base, plates=replace(base.plates, enabled=False), people=replace(base.people, enabled=False))
    (union,) = build_detectors(config)
    photo, head = _close_up(330, 52, 0.75)  # the face fills three quarters of the photo's height
    assert len(union.detect(photo)) == 0 or iou_matrix(head, union.detect(photo).xyxy).max() < 0.3
    assert iou_matrix(head, union.detect_still(photo).xyxy).max() > 0.5


class _FacesOfTheCanvas:
    """A face model that finds one face in the photo as it is (at its top-left corner) and, on the step back's
    grey canvas, a face covering exactly the shrunk photo."""

    name = "canvas_faces"

    def detect(self, image_bgr):
        height, width = image_bgr.shape[:2]
        grey = np.all(image_bgr == 114, axis=2)
        if not grey.any():
            box = [0, 0, 2, 2]
        else:
            ys, xs = np.nonzero(~grey)
            box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        return Detections(np.array([box], np.float32), np.array([0.9], np.float32), np.array([Label.FACE]))


def test_what_the_step_back_finds_maps_back_to_the_photo_s_pixels_and_the_first_look_stays():
    union = FaceUnion([_FacesOfTheCanvas()], 1.0, 1.0, 0.0)
    for height, width in [(480, 640), (481, 641), (7, 9), (5, 5)]:
        photo = np.zeros((height, width, 3), np.uint8)
        found = union.detect_still(photo)
        # The step back's box is the whole photo (to the last pixel, whatever the rounding), and the first
        # look's box is kept beside it.
        assert np.allclose(sorted(found.xyxy.tolist()), [[0, 0, 2, 2], [0, 0, width, height]], atol=1e-4), \
            (height, width, found.xyxy)
        assert (found.label == Label.FACE).all()


def test_the_first_look_is_kept_where_the_step_back_finds_nothing():
    class _OnlyTheFirstLook:
        name = "first"

        def detect(self, image_bgr):
            if np.all(image_bgr[0, 0] == 114):
                return Detections.empty()
            return Detections(np.array([[10, 10, 30, 40]], np.float32), np.array([0.9], np.float32),
                              np.array([Label.FACE]))

    found = FaceUnion([_OnlyTheFirstLook()], 1.0, 1.0, 0.0).detect_still(np.zeros((480, 640, 3), np.uint8))
    assert np.allclose(found.xyxy, [[10, 10, 30, 40]])
