"""Plate tiles: windows cover the road band with overlap; config keeps the band sane."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge.config import config_from_dict
from edge.detect.yolo import tile_windows
from edge.errors import ConfigError


def test_road_band_of_a_720p_frame_is_one_row_of_overlapping_tiles():
    windows = tile_windows(1280, 720, 640, top=0.35, bottom=0.9)
    assert windows == [(0, 252, 640, 396), (320, 252, 640, 396), (640, 252, 640, 396)]


@pytest.mark.parametrize("width,height", [(1920, 1080), (1024, 768), (4056, 3040)])
def test_full_tiles_cover_every_pixel_with_at_least_the_minimum_overlap(width, height):
    windows = tile_windows(width, height, 640, top=0.0, bottom=1.0, min_overlap=0.2)
    xs = sorted({(x, w) for x, _, w, _ in windows})
    ys = sorted({(y, h) for _, y, _, h in windows})
    for spans, length in ((xs, width), (ys, height)):
        assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == length
        for (a, size_a), (b, _) in zip(spans, spans[1:]):
            assert a + size_a - b >= 0.2 * 640 - 1  # neighbours overlap by a fifth of a tile
    assert all(w <= 640 and h <= 640 for _, _, w, h in windows)


def test_a_frame_smaller_than_a_tile_is_one_window():
    assert tile_windows(600, 400, 640, top=0.0, bottom=1.0) == [(0, 0, 600, 400)]


def test_road_band_must_be_top_above_bottom():
    with pytest.raises(ConfigError, match="road_top"):
        config_from_dict({"detect": {"plates": {"road_top": 0.8, "road_bottom": 0.5}}})


def test_boxes_found_in_a_tile_map_back_to_the_frame(sample_plate_crop):
    """A real plate pasted near the corner of a large frame is found where it is, through the tiles."""
    from edge.config import DetectConfig
    from edge.detect.boxes import iou_matrix
    from edge.detect.factory import build_detectors

    crop, plate_in_crop = sample_plate_crop
    canvas = np.full((1440, 2560, 3), 114, np.uint8)
    x, y = 1900, 1000
    canvas[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    truth = plate_in_crop + np.array([x, y, x, y], np.float32)
    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False), plates=replace(base.plates, tiles="full"),
                     people=replace(base.people, enabled=False))
    (detector,) = build_detectors(config)
    found = detector.detect(canvas)
    assert len(found) and iou_matrix(truth[None], found.xyxy).max() > 0.5


def test_a_photo_is_also_searched_in_tiles_of_the_photo_enlarged(sample_plate_crop):
    """A plate too small for the whole-photo pass of a large photo is found by `detect_still`'s enlarged
    tiles, mapped back to where it is in the photo; a video frame (`detect`) pays for no tiles."""
    from edge.config import DetectConfig
    from edge.detect.boxes import iou_matrix
    from edge.detect.factory import build_detectors

    import cv2

    crop, plate_in_crop = sample_plate_crop
    crop = cv2.resize(crop, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # a plate about 70 px wide
    canvas = np.full((1440, 2560, 3), 114, np.uint8)
    x, y = 1500, 700
    canvas[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    truth = plate_in_crop / 2 + np.array([x, y, x, y], np.float32)
    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False), people=replace(base.people, enabled=False),
                     plates=replace(base.plates, photo_tile_scale=1.25))
    (detector,) = build_detectors(config)

    def found_it(found) -> bool:
        return bool(len(found)) and iou_matrix(truth[None], found.xyxy).max() > 0.5

    assert not found_it(detector.detect(canvas))  # about 18 px wide in the whole-photo pass: missed
    assert found_it(detector.detect_still(canvas))


def test_what_the_enlarged_tiles_find_never_takes_the_place_of_a_whole_photo_box_that_hid_more():
    from edge.config import DetectConfig
    from edge.detect.factory import build_detectors
    from edge.types import Detections, Label

    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False), people=replace(base.people, enabled=False),
                     plates=replace(base.plates, photo_tile_scale=1.25))
    (detector,) = build_detectors(config)
    whole = np.array([[0, 0, 44, 18]], np.float32)  # a low score, and larger than the tile's box
    detector.detect = lambda image: Detections(whole, np.array([0.3], np.float32), np.array([Label.PLATE]))
    detector.detect_window = lambda image: (np.array([[0, 0, 50, 20]], np.float32), np.array([0.9], np.float32))
    found = detector.detect_still(np.zeros((768, 1024, 3), np.uint8))
    # The first tile's box maps back to [0, 0, 40, 16] (IoU 0.81 with the whole-photo box): NMS would keep it alone.
    assert any((box[:2] <= whole[0, :2]).all() and (box[2:] >= whole[0, 2:]).all() for box in found.xyxy)


def test_what_the_road_tiles_find_never_takes_the_place_of_a_whole_frame_box_that_hid_more():
    from edge.config import DetectConfig
    from edge.detect.factory import build_detectors

    base = DetectConfig()
    config = replace(base, faces=replace(base.faces, enabled=False), people=replace(base.people, enabled=False),
                     plates=replace(base.plates, tiles="road", road_top=0.0, road_bottom=1.0))
    (detector,) = build_detectors(config)
    whole = np.array([[0, 0, 44, 18]], np.float32)  # a low score, and larger than the tile's box
    looks = iter([(whole, np.array([0.3], np.float32))])  # the first window is the whole frame, then the tiles
    detector.detect_window = lambda image: next(looks, (np.array([[0, 0, 40, 16]], np.float32),
                                                        np.array([0.9], np.float32)))
    found = detector.detect(np.zeros((720, 1280, 3), np.uint8))
    # The first tile's box (IoU 0.81 with the whole-frame box) outscores it: NMS would keep the tile's box alone.
    assert any((box[:2] <= whole[0, :2]).all() and (box[2:] >= whole[0, 2:]).all() for box in found.xyxy)


def test_the_photo_tile_scale_is_off_or_an_enlargement():
    with pytest.raises(ConfigError, match="photo_tile_scale"):
        config_from_dict({"detect": {"plates": {"photo_tile_scale": 0.5}}})
    assert config_from_dict({"detect": {"plates": {"photo_tile_scale": 0}}}).detect.plates.photo_tile_scale == 0


@pytest.fixture(scope="module")
def sample_plate_crop():
    """The largest plate of the sample's first frame, with some car around it, and its box in the crop."""
    import cv2

    from edge.bench.annotations import load_sample_truth
    from edge.camera import SAMPLE_VIDEO

    truth = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))[0]
    plates = truth.xyxy[truth.label == 1]
    box = plates[np.argmax(plates[:, 3] - plates[:, 1])]
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    _ok, frame = capture.read()
    capture.release()
    x1, y1 = (int(max(0, v - 40)) for v in box[:2])
    x2, y2 = int(min(frame.shape[1], box[2] + 40)), int(min(frame.shape[0], box[3] + 40))
    return frame[y1:y2, x1:x2].copy(), box - np.array([x1, y1, x1, y1], np.float32)
