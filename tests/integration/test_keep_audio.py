"""`dashcam anonymize --keep-audio`, as real subprocesses: the input's audio is copied packet for packet, in
step with the video, whether the video was anonymized whole or in pieces; without the flag no audio is stored."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import small_frames
from edge.camera import SAMPLE_VIDEO
from recording import run_dashcam

FPS = 30
SAMPLE_RATE = 48_000


def _clip_with_audio(path: Path, frame_count: int) -> Path:
    """Frames of the sample (a keyframe every second) and a 440 Hz tone as AAC, in one MP4."""
    frames = small_frames(SAMPLE_VIDEO, (640, 360), range(frame_count))
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        video.options = {"crf": "18", "preset": "ultrafast"}
        video.codec_context.gop_size = FPS
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        for i in range(frame_count):
            container.mux(video.encode(av.VideoFrame.from_ndarray(frames[i], format="bgr24")))
        samples = frame_count * SAMPLE_RATE // FPS
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def _audio_packets(path: Path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        stream = container.streams.audio[0]
        return [(float(p.pts * p.time_base), bytes(p)) for p in container.demux(stream) if p.size]


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _clip_with_audio(tmp_path_factory.mktemp("audio") / "trip.mp4", 3 * FPS)


@pytest.mark.parametrize("how", [["--jobs", "1"], ["--jobs", "2", "--piece-seconds", "1"]],
                         ids=["whole", "in-pieces"])
def test_keep_audio_copies_every_audio_packet_in_step_with_the_video(clip, tmp_path, how):
    result = run_dashcam("anonymize", str(clip), "--output", str(tmp_path), "--keep-audio", *how, timeout=300)
    assert result.returncode == 0, result.stderr
    stored, original = _audio_packets(tmp_path / clip.name), _audio_packets(clip)
    assert original and [data for _, data in stored] == [data for _, data in original]
    assert [t for t, _ in stored] == pytest.approx([t for t, _ in original], abs=1e-3)
    assert _video_frames(tmp_path / clip.name) == 3 * FPS
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and "video-only" in p.name]


def test_without_keep_audio_no_audio_is_stored(clip, tmp_path):
    result = run_dashcam("anonymize", str(clip), "--output", str(tmp_path), "--jobs", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    assert _audio_packets(tmp_path / clip.name) == [] and _video_frames(tmp_path / clip.name) == 3 * FPS
