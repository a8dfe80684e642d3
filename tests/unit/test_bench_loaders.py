"""Annotation loaders against the hand-made fixtures in tests/data/bench (see its README)."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bench.annotations import (MediaInfo, detect_format, image_sizes, load_annotations, load_coco,
                                    load_sample_truth, load_yolo)
from edge.bench.cvat import Keyframe, expand_track
from edge.errors import ConfigError, SourceError
from edge.types import Label

BENCH = Path(__file__).resolve().parents[1] / "data" / "bench"
SAMPLE_TRUTH = Path(__file__).resolve().parents[2] / "edge" / "data" / "sample" / "drive_720p.gt.json"


def boxes(annotations, key):
    return annotations.truths[key].xyxy.tolist()


# --- COCO ---------------------------------------------------------------------------------------

def test_coco_images_maps_classes_clips_and_counts():
    loaded = load_annotations(BENCH / "coco_images.json")
    assert list(loaded.truths) == ["street.jpg", "crowd.jpg", "empty.jpg"]
    street = loaded.truths["street.jpg"]
    assert street.xyxy.tolist() == [[10, 10, 30, 40], [190, 50, 200, 60]]
    assert street.label.tolist() == [Label.FACE, Label.PLATE]
    assert street.track.tolist() == [-1, -1]
    assert (street.width, street.height) == (200, 100)
    assert loaded.truths["empty.jpg"].xyxy.shape == (0, 4)
    issues = loaded.issues
    assert (issues.boxes, issues.clipped_boxes, issues.empty_boxes, issues.beyond_input) == (3, 1, 1, 1)
    assert issues.unknown_classes == {"car": 1}


def test_coco_caller_mapping_and_input_images():
    loaded = load_annotations(BENCH / "coco_images.json", classes={"car": "ignore"},
                              media=MediaInfo.images({"street.jpg": (200, 100)}))
    assert list(loaded.truths) == ["street.jpg"]
    assert loaded.issues.unknown_classes == {}
    assert loaded.issues.ignored_boxes == 1
    assert loaded.issues.beyond_input == 3  # the crowd.jpg boxes and the one for a missing image


def test_coco_image_size_mismatch_is_an_error():
    with pytest.raises(SourceError, match="street.jpg is annotated as 200x100"):
        load_annotations(BENCH / "coco_images.json", media=MediaInfo.images({"street.jpg": (100, 50)}))


def test_coco_video_frames_tracks_and_frames_beyond_the_video():
    loaded = load_annotations(BENCH / "coco_video.json", media=MediaInfo.video(4, 64, 48))
    assert loaded.video and loaded.frame_size == (64, 48)
    assert list(loaded.truths) == ["0", "1", "3"]
    assert loaded.truths["1"].track.tolist() == [1, 2]
    assert loaded.truths["1"].label.tolist() == [Label.FACE, Label.PLATE]
    assert loaded.issues.beyond_input == 1  # frame 4 of a 4-frame video
    assert loaded.get("2").xyxy.shape == (0, 4) and loaded.get("2").width == 64


def test_coco_video_detected_without_media_and_id_order(tmp_path):
    assert load_annotations(BENCH / "coco_video.json").video
    data = (BENCH / "coco_video.json").read_text().replace('"frame_id"', '"frame_no"')
    (tmp_path / "ordered.json").write_text(data)
    loaded = load_annotations(tmp_path / "ordered.json", media=MediaInfo.video(None, 64, 48))
    assert list(loaded.truths) == ["0", "1", "3", "4"]  # image ids 10..14 in order are frames 0..4


def test_legacy_load_coco_still_returns_truths_and_sizes():
    truths, sizes = load_coco(BENCH / "coco_images.json", category_label=Label.PLATE)
    assert sizes["crowd.jpg"] == (120, 80)
    assert (truths[0].label == Label.PLATE).all() and len(truths[0].label) == 3


# --- YOLO ---------------------------------------------------------------------------------------

YOLO_SIZES = {"street.jpg": (200, 100), "sub/side.jpg": (100, 50), "blank.png": (50, 50)}


def test_yolo_folder_with_classes_txt_polygon_and_orphan():
    loaded = load_annotations(BENCH / "yolo" / "labels", media=MediaInfo.images(YOLO_SIZES))
    assert boxes(loaded, "street.jpg") == [[80, 30, 120, 70], [140, 80, 200, 100]]
    assert loaded.truths["street.jpg"].label.tolist() == [Label.FACE, Label.PLATE]
    np.testing.assert_allclose(boxes(loaded, "sub/side.jpg"), [[10, 5, 30, 25]], rtol=1e-6)
    assert loaded.truths["blank.png"].xyxy.shape == (0, 4)
    assert loaded.issues.clipped_boxes == 1
    assert loaded.issues.beyond_input == 2  # orphan.txt has no image in the input


def test_yolo_data_yaml_names_and_val_folder(tmp_path):
    labels = tmp_path / "valid" / "labels"
    labels.mkdir(parents=True)
    (labels / "x.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("path: .\nval: valid/images\nnames: {0: car, 1: number plate}\n")
    loaded = load_annotations(tmp_path / "data.yaml", media=MediaInfo.images({"x.jpg": (40, 20)}))
    assert boxes(loaded, "x.jpg") == [[10, 5, 30, 15]]
    assert loaded.truths["x.jpg"].label.tolist() == [Label.PLATE]


def test_yolo_without_names_needs_a_numeric_mapping(tmp_path):
    (tmp_path / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    media = MediaInfo.images({"x.jpg": (40, 20)})
    with pytest.raises(SourceError, match="classes are numbers"):
        load_annotations(tmp_path, "yolo", media=media)
    loaded = load_annotations(tmp_path, "yolo", media=media, classes={"0": "face"})
    assert loaded.truths["x.jpg"].label.tolist() == [Label.FACE]


def test_legacy_load_yolo_still_works():
    truths = load_yolo(BENCH / "yolo" / "labels", {"street.jpg": (200, 100)}, ["face", "plate"])
    assert [t.key for t in truths] == ["street.jpg"] and len(truths[0].label) == 2


# --- CVAT ---------------------------------------------------------------------------------------

def test_cvat_video_interpolates_keyframes_and_honours_outside():
    loaded = load_annotations(BENCH / "cvat_video.xml")
    assert loaded.frame_size == (100, 80) and loaded.frame_count == 10
    face_x1 = {key: t.xyxy[t.label == Label.FACE][:, 0].tolist() for key, t in loaded.truths.items()}
    assert face_x1 == {"0": [10], "1": [11], "2": [12], "3": [13], "4": [14], "5": [14]}  # gone at 6: outside
    assert loaded.truths["1"].track.tolist() == [0, 1]
    issues = loaded.issues
    assert issues.interpolated_boxes == 4  # frames 1-3 interpolated, frame 5 held before outside
    assert issues.beyond_input == 1  # plate at frame 12 of a 10-frame task
    assert issues.unknown_classes == {"sign": 1}
    assert issues.ignored_boxes == 1  # the polygon


def test_cvat_video_caller_frame_count_wins():
    loaded = load_annotations(BENCH / "cvat_video.xml", "cvat-video", media=MediaInfo.video(3, 100, 80))
    assert sorted(loaded.truths, key=int) == ["0", "1", "2"]
    with pytest.raises(SourceError, match="annotations are for 100x80 frames but the video is 50x40"):
        load_annotations(BENCH / "cvat_video.xml", media=MediaInfo.video(3, 50, 40))


def test_expand_track_without_gaps_interpolates_nothing():
    frames = [Keyframe(i, (0.0, 0.0, 4.0, 4.0), False) for i in range(3)]
    assert [interpolated for _, _, interpolated in expand_track(frames)] == [False, False, False]


def test_cvat_images():
    loaded = load_annotations(BENCH / "cvat_images.xml", "cvat-images")
    assert boxes(loaded, "a.jpg") == [[10, 12, 30, 40]]
    assert boxes(loaded, "b.jpg") == [[90, 60, 100, 70]]
    assert (loaded.issues.clipped_boxes, loaded.issues.ignored_boxes) == (1, 1)
    with pytest.raises(SourceError, match="CVAT for images export, not CVAT for video"):
        load_annotations(BENCH / "cvat_images.xml", "cvat-video")


# --- MOT ----------------------------------------------------------------------------------------

def test_mot_gt_with_seqinfo():
    loaded = load_annotations(BENCH / "mot", classes={"1": "face", "2": "plate"})
    assert loaded.frame_size == (100, 80) and loaded.frame_count == 5
    assert list(loaded.truths) == ["0", "1", "2"]  # 1-based frames become 0-based keys
    assert loaded.truths["1"].track.tolist() == [1, 2]
    assert loaded.truths["1"].label.tolist() == [Label.FACE, Label.PLATE]
    assert boxes(loaded, "0") == [[10, 10, 20, 20], [95, 70, 100, 80]]
    issues = loaded.issues
    assert (issues.ignored_boxes, issues.beyond_input, issues.clipped_boxes) == (1, 1, 1)


def test_mot_needs_a_class_mapping():
    with pytest.raises(SourceError, match="MOT classes are numbers"):
        load_annotations(BENCH / "mot" / "gt" / "gt.txt")
    forced = load_annotations(BENCH / "mot" / "gt" / "gt.txt", force_label="face")
    assert set(np.concatenate([t.label for t in forced.truths.values()]).tolist()) == {Label.FACE}


# --- dataset formats ----------------------------------------------------------------------------

def test_wider_face_blocks_invalid_flag_and_empty_images():
    sizes = {"0--Parade/0_Parade_a.jpg": (100, 80), "1--Handshaking/1_Handshaking_b.jpg": (50, 50),
             "2--Demonstration/2_Demonstration_c.jpg": (120, 70)}
    loaded = load_annotations(BENCH / "wider_val_bbx_gt.txt", media=MediaInfo.images(sizes))
    assert loaded.issues.format == "wider"
    assert boxes(loaded, "0--Parade/0_Parade_a.jpg") == [[10, 10, 30, 34]]
    assert loaded.truths["1--Handshaking/1_Handshaking_b.jpg"].xyxy.shape == (0, 4)
    assert boxes(loaded, "2--Demonstration/2_Demonstration_c.jpg") == [[100, 60, 120, 70]]
    assert (loaded.issues.ignored_boxes, loaded.issues.clipped_boxes) == (1, 1)


def test_openalpr_and_ufpr_per_image_txt():
    alpr = load_annotations(BENCH / "openalpr", media=MediaInfo.images({"car1.jpg": (200, 100)}))
    assert alpr.issues.format == "openalpr" and boxes(alpr, "car1.jpg") == [[40, 30, 90, 42]]
    ufpr = load_annotations(BENCH / "ufpr", media=MediaInfo.images({"track0001[01].png": (1920, 1080)}))
    assert ufpr.issues.format == "ufpr" and boxes(ufpr, "track0001[01].png") == [[60, 80, 100, 94]]
    assert ufpr.truths["track0001[01].png"].label.tolist() == [Label.PLATE]


def test_ccpd_box_from_file_name():
    base = "ccpd_base/025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg"
    sizes = {base: (720, 1160), "ccpd_np/1005.jpg": (720, 1160)}
    loaded = load_annotations(BENCH / "ccpd_split.txt", media=MediaInfo.images(sizes))
    assert loaded.issues.format == "ccpd"
    assert boxes(loaded, base) == [[154, 383, 386, 473]]
    assert loaded.truths["ccpd_np/1005.jpg"].xyxy.shape == (0, 4)


@pytest.mark.parametrize("relative, expected", [
    ("coco_images.json", "coco"), ("yolo/labels", "yolo"), ("cvat_video.xml", "cvat"), ("mot", "mot"),
    ("mot/gt/gt.txt", "mot"), ("wider_val_bbx_gt.txt", "wider"), ("openalpr", "openalpr"), ("ufpr", "ufpr"),
    ("ccpd_split.txt", "ccpd"),
])
def test_detect_format(relative, expected):
    assert detect_format(BENCH / relative) == expected


def test_sample_truth_still_has_every_frame():
    truth = load_sample_truth(SAMPLE_TRUTH)
    assert len(truth) == 360 and [t.key for t in truth[:3]] == ["0", "1", "2"]
    assert all(len(t.track) == len(t.label) for t in truth)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, fmt, message", [
    ("broken.json", '{"images": [', "coco", "malformed JSON"),
    ("nolist.json", '{"images": 3, "annotations": []}', "coco", "not COCO"),
    ("bad_ann.json", '{"images": [], "annotations": [{"image_id": 1}]}', "coco", "annotation #0 is malformed"),
    ("broken.xml", "<annotations><track></annotations>", "cvat", "malformed XML"),
    ("nocorner.xml", '<annotations><meta><task><original_size><width>9</width><height>9</height>'
     '</original_size></task></meta><track id="0" label="face"><box frame="0" ytl="1" xbr="2" ybr="2"/>'
     '</track></annotations>', "cvat", "track 0 frame 0"),
    ("gt.txt", "1,1,10,10,10,10,1,1\n", "mot", r"gt.txt:1: expected 9 comma-separated fields"),
    ("gt2.txt", "1,1,10,10,10,10,1,1,1\n2,1,ten,10,10,10,1,1,1\n", "mot", r"gt2.txt:2: expected numbers"),
    ("wider.txt", "a.jpg\n2\n1 1 4 4 0 0 0 0 0 0\n", "wider", "should have 2 box rows"),
    ("wider2.txt", "a.jpg\ntwo\n", "wider", r"wider2.txt:2: expected the number of faces"),
])
def test_malformed_files_name_the_file(tmp_path, name, content, fmt, message):
    path = tmp_path / name
    path.write_text(content)
    media = {"wider": MediaInfo.images({"a.jpg": (10, 10)}), "mot": MediaInfo.video(5, 10, 10)}.get(fmt)
    with pytest.raises(SourceError, match=message) as raised:
        load_annotations(path, fmt, media=media, classes={"1": "face"})
    assert name in str(raised.value)


def test_malformed_yolo_row_names_file_and_line(tmp_path):
    (tmp_path / "x.txt").write_text("0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n")
    with pytest.raises(SourceError, match=r"x.txt:2: expected 5 fields"):
        load_annotations(tmp_path, "yolo", media=MediaInfo.images({"x.jpg": (10, 10)}), classes={"0": "face"})


def test_bad_ccpd_name(tmp_path):
    name = "ccpd_base/01-2-notabox-4.jpg"
    (tmp_path / "split.txt").write_text(name + "\n")
    with pytest.raises(SourceError, match="not a CCPD name"):
        load_annotations(tmp_path / "split.txt", "ccpd", media=MediaInfo.images({name: (9, 9)}))


def test_missing_file_unknown_format_and_bad_mapping(tmp_path):
    with pytest.raises(SourceError, match="annotations not found"):
        load_annotations(tmp_path / "nope.json")
    with pytest.raises(SourceError, match="unknown annotation format"):
        load_annotations(BENCH / "coco_images.json", "pascal")
    with pytest.raises(SourceError, match="cannot tell the annotation format"):
        (tmp_path / "notes.csv").write_text("x")
        detect_format(tmp_path / "notes.csv")
    with pytest.raises(ConfigError, match="map to face, plate or ignore"):
        load_annotations(BENCH / "coco_images.json", classes={"car": "vehicle"})


def test_image_sizes_of_a_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((5, 7, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "sub" / "b.png"), np.zeros((9, 4, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert image_sizes(tmp_path) == {"a.png": (7, 5), "sub/b.png": (4, 9)}


def test_problems_are_logged_once_each(caplog):
    with caplog.at_level(logging.WARNING, logger="edge.bench.truth"):
        load_annotations(BENCH / "coco_images.json")
    messages = [record.getMessage() for record in caplog.records]
    assert sum("unknown classes 'car' (1)" in m for m in messages) == 1
    assert sum("clipped 1 boxes" in m for m in messages) == 1
    assert all("coco_images.json" in m for m in messages)
