"""The bench runner's own logic: arguments, naming runs, scoring what the pipeline hands to its sink."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bench.annotations import MediaInfo, load_annotations
from edge.bench.coverage import boxes_mask
from edge.bench.metrics import MetricsAccumulator
from edge.bench.runner import (BenchInput, _CopyingSource, _RawDetections, _ScoringSink, _SourceCopies, copy_limit,
                               load_truth, named_configs, parse_class_map, recorded_config)
from edge.bench.stored import lost_detail
from edge.camera import SAMPLE_VIDEO
from edge.camera.opencv import stamp
from edge.config import Config, RedactConfig, TrackConfig
from edge.errors import ConfigError, SourceError
from edge.redact import Redactor
from edge.types import DetectionFailure, Detections, Label

DATA = Path(__file__).resolve().parents[1] / "data" / "bench"


def test_class_map():
    assert parse_class_map(["LP=plate", "0=Face", "a=b=ignore"]) == {"LP": "plate", "0": "face", "a=b": "ignore"}
    for bad in ("car", "=face", "car=truck"):
        with pytest.raises(ConfigError, match="--class-map"):
            parse_class_map([bad])


def test_runs_are_named_by_file_stem(tmp_path):
    (tmp_path / "a").mkdir()
    for path in (tmp_path / "fast.yaml", tmp_path / "a" / "fast.yaml"):
        path.write_text("track:\n  detect_every: 2\n")
    assert [name for name, _ in named_configs([tmp_path / "fast.yaml", tmp_path / "a" / "fast.yaml"])] == \
        ["fast", "fast-2"]
    assert [name for name, _ in named_configs([])] == ["default"]


def test_recorded_config_leaves_out_locations():
    recorded = recorded_config(Config())
    assert set(recorded) == {"detect", "track", "redact"}
    assert recorded["track"]["detect_every"] == Config().track.detect_every


def _truth(frame_count: int = 4):
    media = MediaInfo.video(frame_count, 64, 48)
    return load_annotations(DATA / "coco_video.json", "coco", media=media)


def _textured(index: int) -> np.ndarray:
    """A source frame with detail everywhere (smoothed noise, different per frame)."""
    noise = np.random.default_rng(index).integers(0, 256, (48, 64), dtype=np.uint8)
    return np.repeat(cv2.GaussianBlur(noise, (0, 0), 1.0)[..., None], 3, axis=2)


def _frame(index: int, verdict: Detections | DetectionFailure, config: RedactConfig):
    return Redactor(config).redact(stamp(_textured(index), index), verdict)


def test_sink_scores_dropped_frames_from_the_gaps():
    config, truth = RedactConfig(), _truth()
    accumulator, raw, sources = MetricsAccumulator(), _RawDetections(), _SourceCopies(limit=8)
    sink = _ScoringSink(truth, accumulator, raw, config, progress=None, sources=sources)
    found = Detections(np.array([[2, 2, 20, 20]], np.float32), np.array([0.9], np.float32),
                       np.array([Label.FACE]))
    for index in range(4):
        sources.keep(index, _textured(index))
    raw.put(0, found)
    raw.put(2, DetectionFailure("boom"))
    sink.write(_frame(0, found, config))
    sink.note_dropped()  # frame 1: its index is the gap before frame 2
    sink.write(_frame(2, DetectionFailure("boom"), config))
    sink.finish(4)  # frame 3 was dropped after the last stored frame
    result = accumulator.result()
    assert (result.frames, result.frames_dropped, result.frames_whole_frame) == (4, 2, 1)
    assert result.frames_detector_ran == 1  # the failed keyframe has no detections to score
    assert len(sources) == 0  # every source copy went when its frame was scored, stored or not
    # Textured over-redaction: frame 0 lost only what its mask hid outside the boxes; frames 1-3 (dropped,
    # hidden whole, dropped) lost all of their textured area outside the boxes.
    outside = [~boxes_mask(truth.get(str(i)).xyxy, (48, 64)) for i in range(4)]
    first = _frame(0, found, config).image_bgr
    lost_first = np.count_nonzero(lost_detail(_textured(0), first)[0] & outside[0])
    everywhere = sum(np.count_nonzero(outside[i]) for i in range(1, 4))  # noise: every pixel is textured
    expected = (lost_first + everywhere) / (np.count_nonzero(outside[0]) + everywhere)
    assert 0 < lost_first < np.count_nonzero(outside[0])
    assert result.over_redaction_textured == pytest.approx(expected, abs=0.01)


def test_a_source_copy_is_kept_of_every_frame_and_the_copies_are_bounded():

    class Frames:
        name, fps, width, height = "frames", 10.0, 64, 48

        def __init__(self) -> None:
            self.index, self.closed = 0, False

        def read(self):
            self.index += 1
            return stamp(np.full((48, 64, 3), self.index, np.uint8), self.index - 1) if self.index <= 4 else None

        def close(self) -> None:
            self.closed = True

    inner, sources = Frames(), _SourceCopies(limit=8)
    source = _CopyingSource(inner, sources)
    frames = [source.read() for _ in range(5)]
    assert frames[-1] is None and (source.width, source.height) == (64, 48)
    assert len(sources) == 4  # frames without boxes too: their textured area counts in over-redaction
    frames[1].image_bgr[:] = 0  # redaction overwrites the frame in place; the copy is the bench's own
    assert sources.pop(1).max() == 2 and sources.pop(1) is None
    source.close()
    assert inner.closed
    bounded = _SourceCopies(limit=2)
    bounded.keep(0, frames[0].image_bgr)
    bounded.keep(1, frames[0].image_bgr)
    with pytest.raises(RuntimeError, match="not reaching the scorer"):
        bounded.keep(2, frames[0].image_bgr)
    assert copy_limit(TrackConfig(detect_every=3)) == 2 * 3 + 16


def test_annotations_must_describe_the_kind_of_input(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    images = BenchInput(tmp_path, MediaInfo.images({"a.png": (320, 240)}))
    with pytest.raises(SourceError, match="do not describe still images"):
        load_truth(images, SAMPLE_VIDEO.with_name("drive_720p.gt.json"), "sample")
    video = BenchInput(tmp_path / "v.mp4", MediaInfo.video(10, 320, 240))
    with pytest.raises(SourceError, match="describe still images, but the input is a video"):
        load_truth(video, DATA / "yolo" / "labels", "yolo")
