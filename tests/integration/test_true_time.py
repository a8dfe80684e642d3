"""Time in stored files is the time of capture, proven by decoding them; and files get no live deadline.

Live runs that drop frames store them at their capture times (variable frame rate),
segments are cut by time, sidecars and the trips index carry the true duration, a
variable-frame-rate input keeps its timestamps offline, and offline work waits for a
slow detector instead of blurring frames whole. Real clips, real pipeline, real
encoder; the detectors are scripted fakes that take their time.
"""
from __future__ import annotations

import json
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import ScriptedDetector, canary_frames, write_clip
from edge.camera.images import ImageFolderSource
from edge.camera.opencv import VideoFileSource
from edge.config import RedactConfig, TrackConfig, config_from_dict
from edge.detect.factory import guarded
from edge.errors import ConfigError
from edge.pipeline import Pipeline
from edge.record.encoder import EncoderSettings
from edge.record.index import TripsIndex
from edge.record.sidecar import Sidecar
from edge.record.segments import SegmentRecorder
from edge.record.store import RecordingsFolder, parse_utc
from edge.redact import Redactor
from edge.types import Frame
from recording import FPS, SIZE, feed, recorder, redacted, run_dashcam

# Frame slots of a variable-rate clip at 30 fps: a steady start, then gaps (a phone's camera app, a dropped second).
VFR_SLOTS = [0, 1, 2, 3, 9, 10, 11, 24, 25, 26, 45, 46, 47]
VFR_FPS = 30


def decoded_times_s(path: Path) -> list[float]:
    """Each stored frame's presentation time, from the file's first frame (a fragmented MP4 starts a little late)."""
    with av.open(str(path)) as container:
        times = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
    return [t - times[0] for t in times]


def container_duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        return container.duration / 1e6


def write_vfr_clip(path: Path, slots: list[int], fps: int = VFR_FPS) -> Path:
    """A clip whose frame i is shown at slots[i] / fps; AVI (one rate per stream) gets the gaps as skipped frames."""
    avi = path.suffix == ".avi"
    time_base = Fraction(1, fps) if avi else Fraction(1, 1000)
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4" if avi else "libx264", rate=fps, time_base=time_base)
        stream.codec_context.time_base = time_base
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for slot in slots:
            image = av.VideoFrame.from_ndarray(np.roll(base, 3 * slot, axis=1), format="bgr24")
            image.pts, image.time_base = round(Fraction(slot, fps) / time_base), time_base
            container.mux(stream.encode(image))
        container.mux(stream.encode(None))
    return path


class SlowDetector(ScriptedDetector):
    """Finds nothing, taking `delay_s` on the calls listed (all calls when None)."""

    def __init__(self, delay_s: float, slow_calls: set[int] | None = None) -> None:
        super().__init__()
        self._delay_s, self._slow_calls = delay_s, slow_calls

    def detect(self, image_bgr: np.ndarray):
        if self._slow_calls is None or self.calls in self._slow_calls:
            time.sleep(self._delay_s)
        return super().detect(image_bgr)


class AsCamera:
    """The real file source delivering like a camera: no clock of its own, capture time is the timeline."""

    def __init__(self, clip: Path) -> None:
        self._source = VideoFileSource(clip, realtime=True)
        self.name, self.fps = "camera", self._source.fps
        self.width, self.height = self._source.width, self._source.height

    def read(self) -> Frame | None:
        frame = self._source.read()
        if frame is not None:
            frame.t_media_ns = None
        return frame

    def close(self) -> None:
        self._source.close()


class TimedSink:
    """The recorder, noting each stored frame's capture and timeline times on the way in."""

    def __init__(self, inner: SegmentRecorder) -> None:
        self._inner = inner
        self.mono_ns: list[int] = []
        self.timeline_ns: list[int] = []

    def write(self, frame) -> None:
        self.mono_ns.append(frame.t_mono_ns)
        self.timeline_ns.append(frame.timeline_ns)
        self._inner.write(frame)

    def note_dropped(self) -> None:
        self._inner.note_dropped()

    def close(self) -> None:
        self._inner.close()


def _live_run(source, out: Path, detector) -> tuple:
    rec = SegmentRecorder.open(out, source.width, source.height, source.fps, 60.0, EncoderSettings(preset="ultrafast"),
                          {"scripted": "0"}, source.name)
    sink = TimedSink(rec)
    detectors = guarded([detector], config_from_dict({}).detect, live=True)
    try:
        stats = Pipeline(source, detectors, Redactor(RedactConfig()), sink,
                         tracking=TrackConfig(detect_every=1, delay_frames=4), live=True).run()
    finally:
        detectors.close()
        source.close()
    return stats, sink, rec.finished


@pytest.mark.parametrize("as_camera", [False, True], ids=["file-replayed-live", "camera"])
def test_a_live_run_that_drops_frames_stores_them_at_their_capture_times(tmp_path, as_camera):
    fps, count = 10, 30  # a 3 s drive
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    clip = write_clip(tmp_path / "drive.mp4", [np.roll(base, 2 * i, axis=1) for i in range(count)], fps=fps)
    source = AsCamera(clip) if as_camera else VideoFileSource(clip, realtime=True)
    # Two slow detections early on overflow the live line; then it keeps up, so the drive's last frame is kept.
    stats, sink, segments = _live_run(source, tmp_path / "rec", SlowDetector(0.8, slow_calls={1, 2}))

    assert stats.dropped_overload > 0 and stats.frames_stored + stats.dropped_overload == count
    [segment] = segments
    stored = decoded_times_s(segment.video_path)
    assert len(stored) == stats.frames_stored
    captured = [(t - sink.mono_ns[0]) / 1e9 for t in sink.mono_ns]
    timeline = [(t - sink.timeline_ns[0]) / 1e9 for t in sink.timeline_ns]
    assert max(abs(s - t) for s, t in zip(stored, timeline)) < 0.002  # to the tick
    assert max(abs(s - c) for s, c in zip(stored, captured)) < 1 / fps, list(zip(stored, captured))

    sidecar = json.loads(segment.sidecar_path.read_text())
    drive_s = count / fps  # as long as the source ran, not frames_stored / fps
    assert sidecar["duration_s"] == pytest.approx(drive_s, abs=1 / fps)
    assert container_duration_s(segment.video_path) == pytest.approx(sidecar["duration_s"], abs=0.01)
    assert sidecar["frame_count"] / fps < drive_s - 0.5  # the old clock would have stored a fast-forward
    wall_s = (parse_utc(sidecar["end_utc"]) - parse_utc(sidecar["start_utc"])).total_seconds() + 1 / fps
    assert sidecar["duration_s"] == pytest.approx(wall_s, abs=1 / fps)

    index = TripsIndex.open(RecordingsFolder(tmp_path / "rec"), trip_gap_s=300, writable=False)
    try:
        [row] = index.segments()
        [trip] = index.trips()
    finally:
        index.close()
    assert row.duration_s == trip.duration_s == sidecar["duration_s"]
    if as_camera:  # what `dashcam trips` shows a driver: the 3 s the drive took
        listing = run_dashcam("trips", "--recordings", str(tmp_path / "rec"))
        assert listing.returncode == 0, listing.stderr
        assert "0m03s" in listing.stdout, listing.stdout


def test_segments_are_cut_by_time_when_frames_are_dropped(tmp_path):
    rec = recorder(tmp_path / "rec", segment_seconds=1.0)
    for index in range(0, 48, 3):  # at 10 fps, every third frame kept: 4.8 s of drive in 16 frames
        rec.write(redacted(index, index * 1_000_000_000 // FPS))
    rec.close()
    sidecars = [json.loads(info.sidecar_path.read_text()) for info in rec.finished]
    assert len(sidecars) == 4  # one a second, as without drops
    for info, sidecar in zip(rec.finished, sidecars):
        assert sidecar["frame_count"] == 4
        assert sidecar["duration_s"] == pytest.approx(1.0, abs=0.5 / FPS)
        assert decoded_times_s(info.video_path)[-1] + 1 / FPS == pytest.approx(sidecar["duration_s"], abs=0.01)


def test_the_trips_index_takes_the_sidecar_duration_and_falls_back_for_older_sidecars():
    assert Sidecar.from_json({"duration_s": 12.0, "frame_count": 292, "fps": 30.0}).duration_s == 12.0
    assert Sidecar.from_json({"frame_count": 300, "fps": 30.0}).duration_s == 10.0  # written before duration_s
    assert Sidecar.from_json({}).duration_s == 0.0


def test_segments_without_drops_still_hold_segment_seconds_of_frames(tmp_path):
    rec = recorder(tmp_path / "rec", segment_seconds=1.0)
    feed(rec, 0, 25)
    rec.close()
    assert [info.counts.frames for info in rec.finished] == [10, 10, 5]
    assert [json.loads(i.sidecar_path.read_text())["duration_s"] for i in rec.finished] == [1.0, 1.0, 0.5]


def test_a_segment_recovered_after_a_crash_gets_the_time_its_frames_span(tmp_path):
    live = recorder(tmp_path / "live", segment_seconds=60)
    for index in range(0, 60, 2):  # every other frame kept: 6 s of drive in 30 frames
        live.write(redacted(index, index * 1_000_000_000 // FPS))
    shutil.copytree(tmp_path / "live", tmp_path / "crashed")  # the power goes with the segment open
    live.close()
    recorder(tmp_path / "crashed").close()
    [segment] = RecordingsFolder(tmp_path / "crashed").segments()
    sidecar = json.loads(segment.sidecar_path.read_text())
    stored = decoded_times_s(segment.video_path)
    assert sidecar["recovered"] is True and sidecar["frame_count"] == len(stored) >= 20
    assert sidecar["duration_s"] == pytest.approx(stored[-1] + 1 / FPS, abs=0.002)
    assert sidecar["duration_s"] > sidecar["frame_count"] / FPS + 1


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_a_video_file_source_gives_each_frame_its_decoded_timestamp(tmp_path, suffix):
    clip = write_vfr_clip(tmp_path / f"vfr{suffix}", VFR_SLOTS)
    source = VideoFileSource(clip, realtime=False)
    try:
        frames = iter(source.read, None)
        times = [frame.t_media_ns / 1e9 for frame in frames]
    finally:
        source.close()
    assert times == pytest.approx([slot / VFR_FPS for slot in VFR_SLOTS], abs=0.0015)


def test_a_stream_without_timestamps_is_timed_at_its_nominal_rate(tmp_path):
    raw = tmp_path / "raw.h264"
    with av.open(str(raw), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for image in canary_frames(6):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    source = VideoFileSource(raw, realtime=False)
    try:
        times = [frame.t_media_ns / 1e9 for frame in iter(source.read, None)]
    finally:
        source.close()
    assert times == pytest.approx([i / 25 for i in range(6)], abs=1e-6)


def test_an_image_folder_is_timed_at_its_configured_rate_however_fast_it_is_read(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, image in zip(("a.png", "b.png", "d.png"), canary_frames(3)):
        cv2.imwrite(str(folder / name), image)
    (folder / "c.png").write_bytes(b"not a png")  # skipped: its slot stays empty
    source = ImageFolderSource(folder, fps=2.0)
    assert [frame.t_media_ns / 1e9 for frame in iter(source.read, None)] == [0.0, 0.5, 1.5]


def test_anonymize_keeps_a_variable_frame_rate_input_s_timestamps(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for suffix in (".mp4", ".mkv", ".avi"):
        write_vfr_clip(inputs / f"phone{suffix}", VFR_SLOTS)
    result = run_dashcam("anonymize", str(inputs), "-o", str(tmp_path / "out"), timeout=300)
    assert result.returncode == 0, result.stderr
    expected = [(slot - VFR_SLOTS[0]) / VFR_FPS for slot in VFR_SLOTS]
    for suffix in (".mp4", ".mkv", ".avi"):
        output = tmp_path / "out" / f"phone{suffix}"
        assert decoded_times_s(output) == pytest.approx(expected, abs=0.0015), suffix
        # The last frame lasts one frame of the rate the input declares (an MP4 declares its average).
        declared_fps = cv2.VideoCapture(str(inputs / f"phone{suffix}")).get(cv2.CAP_PROP_FPS)
        assert container_duration_s(output) == pytest.approx(expected[-1] + 1 / declared_fps, abs=0.0015), suffix


def test_run_fast_of_a_variable_frame_rate_file_stores_its_time_in_segments_and_sidecars(tmp_path):
    clip = write_vfr_clip(tmp_path / "phone.mkv", VFR_SLOTS)
    source = VideoFileSource(clip, realtime=False)
    assert source.fps == VFR_FPS  # Matroska declares the nominal rate (an MP4 would declare its average)
    rec = SegmentRecorder.open(tmp_path / "rec", source.width, source.height, source.fps, 0.5,
                          EncoderSettings(preset="ultrafast"), {"scripted": "0"}, clip.name)
    detectors = guarded([ScriptedDetector()], config_from_dict({}).detect, live=False)
    try:
        stats = Pipeline(source, detectors, Redactor(RedactConfig()), rec).run()
    finally:
        detectors.close()
        source.close()
    assert stats.frames_stored == len(VFR_SLOTS)
    sidecars = [json.loads(info.sidecar_path.read_text()) for info in rec.finished]
    # Cut by the file's time: frames 0-3 and 9-11 (0-0.4 s), 24-26 (0.8 s), 45-47 (1.5 s).
    assert [s["frame_count"] for s in sidecars] == [7, 3, 3]
    assert [s["duration_s"] for s in sidecars] == pytest.approx([12 / 30, 3 / 30, 3 / 30], abs=0.001)
    first = decoded_times_s(rec.finished[0].video_path)
    assert first == pytest.approx([slot / VFR_FPS for slot in VFR_SLOTS[:7]], abs=0.0015)


# ---- offline work without the live deadline -----------------------------------------------------------------

def _offline_run(tmp_path: Path, detector, config: dict) -> tuple:
    clip = write_clip(tmp_path / "clip.mp4", canary_frames(6), fps=10)
    source = VideoFileSource(clip, realtime=False)
    rec = SegmentRecorder.open(tmp_path / "rec", source.width, source.height, source.fps, 60.0,
                          EncoderSettings(preset="ultrafast"), {"scripted": "0"}, clip.name)
    detectors = guarded([detector], config_from_dict(config).detect, live=False)
    try:
        stats = Pipeline(source, detectors, Redactor(RedactConfig()), rec, tracking=TrackConfig(detect_every=1),
                         live=False).run()
    finally:
        detectors.close()
        source.close()
    return stats


def test_offline_work_waits_for_a_detector_slower_than_the_live_deadline(tmp_path):
    stats = _offline_run(tmp_path, SlowDetector(0.3), {"detect": {"timeout_ms": 100}})
    assert stats.frames_stored == 6
    assert stats.detector_failures == stats.detector_timeouts == stats.whole_frame_redacted == 0


def test_the_offline_deadline_still_fails_a_hung_detection_closed_and_counts_it(tmp_path):
    stats = _offline_run(tmp_path, SlowDetector(1.6, slow_calls={2}), {"detect": {"offline_timeout_ms": 1000}})
    assert stats.frames_stored == 6
    # The overrun call, and any call made while it still holds the detector.
    assert stats.detector_timeouts >= 1 and stats.detector_failures == stats.detector_timeouts
    assert stats.whole_frame_redacted >= stats.detector_timeouts
    assert stats.to_dict()["detector_timeouts"] == stats.detector_timeouts


def test_the_offline_deadline_is_a_checked_config_key():
    assert config_from_dict({}).detect.offline_timeout_ms == 60000
    for bad, message in ((999, "at least 1000"), (600001, "at most 600000")):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"detect": {"offline_timeout_ms": bad}})


def test_live_sources_keep_the_live_deadline():
    config = config_from_dict({"detect": {"timeout_ms": 2500}}).detect
    live, offline = guarded([], config, live=True), guarded([], config, live=False)
    assert (live.timeout_s, offline.timeout_s) == (2.5, 60.0)
    live.close()
    offline.close()

