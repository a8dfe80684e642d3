"""Measure what a kill -9 costs a segment being written, per container, and what crash safety costs.

Usage: .venv/bin/python scripts/measure_power_loss.py [--trials 12] [--seconds 10]

For each container (fragmented MP4, Matroska) a child process encodes the built-in sample
(720p, 30 fps) in real time through the crash-safe `VideoEncoder`, and is killed with
SIGKILL at a random moment; the leftover `.partial` is decoded with PyAV and the loss is
(frames handed to the encoder - frames decodable) / fps. Then each container, and plain
MP4 for reference, encodes the same frames unpaced to compare file size and CPU time.
A kill -9 proves the process-crash case only: the kernel still writes its page cache.
The fsync after each fragment is what bounds a power cut; this script cannot cut power.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.camera import SAMPLE_VIDEO  # noqa: E402
from edge.config import RedactConfig  # noqa: E402
from edge.record import encoder as encoder_module  # noqa: E402
from edge.record.encoder import EncoderSettings, VideoEncoder  # noqa: E402
from edge.redact import Redactor  # noqa: E402
from edge.types import Detections, Frame  # noqa: E402

FPS = 30.0
PRELOAD_FRAMES = 360  # the whole 12 s sample, so P-frames are not cheap repeats


def _frames() -> list[np.ndarray]:
    with av.open(str(SAMPLE_VIDEO)) as container:
        images = []
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="bgr24"))
            if len(images) == PRELOAD_FRAMES:
                return images
    return images


def child(suffix: str, out_dir: Path, count: int, paced: bool, crash_safe: bool, keyframe_s: float) -> None:
    """Encode `count` frames; print the index after each write so the parent knows what was handed over."""
    encoder_module.KEYFRAME_INTERVAL_S = keyframe_s  # a measurement knob, not a setting
    images = _frames()
    redactor = Redactor(RedactConfig())
    height, width = images[0].shape[:2]
    encoder = VideoEncoder(out_dir / f"segment{suffix}", width, height, FPS,
                           EncoderSettings(preset="veryfast"), crash_safe=crash_safe)
    started_ns = time.monotonic_ns()
    cpu_s = 0.0
    for index in range(count):
        if paced:
            due = started_ns + int(index * 1e9 / FPS)
            time.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9))
        # Stamped on a 30 fps camera's clock: the stored times (and x264's rate control) match paced or not.
        t_mono_ns = started_ns + int(index * 1e9 / FPS)
        frame = Frame(images[index % len(images)].copy(), index, t_mono_ns, dt.datetime.now(dt.timezone.utc))
        redacted = redactor.redact(frame, Detections.empty())
        t0 = time.process_time()
        encoder.write(redacted)
        cpu_s += time.process_time() - t0
        print(index, flush=True)
    t0 = time.process_time()
    encoder.close()
    cpu_s += time.process_time() - t0
    print(f"cpu {cpu_s:.3f}", flush=True)


def decodable_frames(path: Path) -> int:
    count = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                count += 1
    except (av.error.FFmpegError, OSError) as exc:
        print(f"    decoding stopped after {count} frames: {exc}", file=sys.stderr)
    return count


def kill_trial(suffix: str, kill_after_s: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen([sys.executable, __file__, "--child", suffix, tmp, "600", "paced",
                                    str(encoder_module.KEYFRAME_INTERVAL_S)],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        written, deadline = -1, None
        for line in process.stdout:
            written = int(line)
            if deadline is None:
                deadline = time.monotonic() + kill_after_s
            if time.monotonic() >= deadline:
                break
        process.send_signal(signal.SIGKILL)
        # Lines still in the pipe were printed before the kill: those frames were handed over too.
        written = max([written] + [int(line) for line in process.stdout.read().split() if line.isdigit()])
        process.wait()
        (partial,) = Path(tmp).glob("*.partial")
        recovered = decodable_frames(partial)
        return (written + 1 - recovered) / FPS


def full_run(suffix: str, crash_safe: bool, count: int, keyframe_s: float) -> tuple[int, int, float, float]:
    """File size, the video payload inside it, CPU seconds and PSNR against the source (CRF is not
    quality-matched: a size is only comparable together with its PSNR)."""
    with tempfile.TemporaryDirectory() as tmp:
        mode = "safe" if crash_safe else "plain"
        result = subprocess.run([sys.executable, __file__, "--child", suffix, tmp, str(count), mode, str(keyframe_s)],
                                capture_output=True, text=True, check=True)
        cpu = float(result.stdout.split("cpu ")[-1])
        (video,) = Path(tmp).glob("segment*")
        return video.stat().st_size, payload_bytes(video), cpu, psnr_db(video)


def psnr_db(video: Path) -> float:
    source = _frames()
    with av.open(str(video)) as container:
        errors = [float(np.mean((frame.to_ndarray(format="bgr24").astype(np.float32)
                                 - source[i % len(source)].astype(np.float32)) ** 2))
                  for i, frame in enumerate(container.decode(video=0))]
    return float(10 * np.log10(255 ** 2 / np.mean(errors)))


def payload_bytes(video: Path) -> int:
    """Bytes of coded video in the file; the rest is what the container costs."""
    with av.open(str(video)) as container:
        return sum(packet.size for packet in container.demux(video=0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=5, metavar=("SUFFIX", "DIR", "COUNT", "MODE", "KEYFRAME_S"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the size/CPU comparison")
    parser.add_argument("--keyframe-seconds", type=float, nargs="+", default=[2.0, 1.0, 4.0],
                        help="keyframe intervals to compare; the first is used for the kill trials")
    args = parser.parse_args()
    if args.child:
        suffix, folder, count, mode, keyframe_s = args.child
        child(suffix, Path(folder), int(count), paced=mode == "paced", crash_safe=mode != "plain",
              keyframe_s=float(keyframe_s))
        return
    count = int(args.seconds * FPS)
    plain_size, plain_payload, plain_cpu, plain_psnr = full_run(".mp4", False, count, 0)
    print(f"plain MP4, x264 defaults (not crash-safe): {plain_size} bytes, PSNR {plain_psnr:.2f} dB, "
          f"{plain_cpu:.2f} s CPU, {count} frames, container overhead {100 * (plain_size / plain_payload - 1):.2f} %")
    for keyframe_s in args.keyframe_seconds:
        size, _, cpu, psnr = full_run(".mp4", True, count, keyframe_s)
        print(f"keyframe every {keyframe_s:g} s (fragmented MP4): {size} bytes ({100 * (size / plain_size - 1):+.1f} %)"
              f", PSNR {psnr:.2f} dB, CPU {cpu:.2f} s ({100 * (cpu / plain_cpu - 1):+.1f} %)")
    encoder_module.KEYFRAME_INTERVAL_S = args.keyframe_seconds[0]
    rng = random.Random(7)
    offsets = [rng.uniform(2.0, 9.0) for _ in range(args.trials)]
    for suffix, name in ((".mp4", "fragmented MP4"), (".mkv", "Matroska")):
        losses = [kill_trial(suffix, offset) for offset in offsets]
        size, payload, cpu, _ = full_run(suffix, True, count, encoder_module.KEYFRAME_INTERVAL_S)
        print(f"{name}: lost after kill -9 min {min(losses):.2f} s, mean {statistics.mean(losses):.2f} s, "
              f"max {max(losses):.2f} s over {len(losses)} kills; {size} bytes, container overhead "
              f"{100 * (size / payload - 1):.2f} %; CPU {cpu:.2f} s ({100 * (cpu / plain_cpu - 1):+.1f} %)")


if __name__ == "__main__":
    main()
