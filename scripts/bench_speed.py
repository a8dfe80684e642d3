"""Speed benchmark on the committed sample: dashcam (every frame, and with detection cadence) against deface.

For the sample clip at 1280x720 and an upscaled copy at 1920x1080 it runs, each as a real
subprocess measured with wait4 (wall time, CPU seconds, peak resident memory):
- `dashcam anonymize` offline, detecting every frame and every `--cadence`-th frame;
- `dashcam run` live, the clip replayed at its own 30 fps as a camera would deliver it;
- deface (CenterFace, faces only, its defaults) on the same file, in its own venv.
Privacy is scored the same way for every tool, from the stored file: a ground-truth box
counts as hidden when its core keeps < 0.25 of the source's detail (edge.bench.stored).

    python scripts/bench_speed.py [--repeats 3] [--cadence 3] [--json bench-speed.json] [--no-deface]
        [--config before=old.yaml --config default=configs/default.yaml]
    python scripts/bench_speed.py --signing [--segment-mb 45]
    python scripts/bench_speed.py --two-cameras [--repeats 3] [--config NAME=FILE ...]

`--two-cameras` replays two 720p cameras at 15 fps each (the sample, and its mirror image as the cabin
camera, which looks for faces and persons but not plates) in one `dashcam run`, and as one process
per camera started together, and reports overload drops, frames blurred whole, CPU and summed peak
memory of each way; each `--config NAME=FILE` is a variant: a config with a `cameras:` list, whose first
two cameras get the clips as their sources.

`--signing` instead measures what evidence costs per segment (edge.evidence): hashing and
signing one segment-sized file (default 45 MB, about a minute of 1080p at crf 23), one Ed25519
signature, and `dashcam verify` of that segment; medians of `--repeats` (at least 5).

deface is installed on first use into `--deface-venv` (default .bench/deface-venv) with
`pip install deface onnxruntime`, so the package index must be reachable once. Offline
runs repeat `--repeats` times and report the median; live runs take 12 s each and run once.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import yaml

from edge import __version__
from edge.bench.annotations import GroundTruth, load_sample_truth
from edge.bench.stored import MAX_RETAINED, box_hidden, core_retained
from edge.camera import SAMPLE_VIDEO
from edge.types import Label

REPO = Path(__file__).resolve().parents[1]
DASHCAM = [sys.executable, "-m", "edge"]


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stats: dict = field(default_factory=dict)

    @property
    def cores_busy(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def run_measured(command: list[str], cwd: Path = REPO) -> Measured:
    """Run a command to completion; wall time, CPU (its own and its reaped children's) and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out, err = process.stdout.read().decode(errors="replace"), process.stderr.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{out[-2000:]}\n{err[-2000:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def frames_of(path: Path):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def make_1080p(source: Path, target: Path) -> None:
    """The sample scaled to 1920x1080 (a 1080p dashcam's frame size; its detail is the 720p detail)."""
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for image in frames_of(source):
            big = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="bgr24")))
        out.mux(stream.encode(None))


def scaled(truth: list[GroundTruth], factor: float) -> list[GroundTruth]:
    return [GroundTruth(t.key, t.xyxy * factor, t.label, t.track) for t in truth]


def stored_recall(source: Path, stored: Path, truth: list[GroundTruth]) -> dict[str, float]:
    """Share of ground-truth boxes per class whose core lost its detail in the stored file (`face`,
    `plate`), and by the auditor's whole-box measure (`face_whole`, `plate_whole`: a head's core and 2/3
    of its ellipse, 85 % of a plate; edge.bench.stored.box_hidden)."""
    hidden = {label: 0 for label in Label}
    whole = dict(hidden)
    total = dict(hidden)
    frames = 0
    for record, original, kept in zip(truth, frames_of(source), frames_of(stored)):
        frames += 1
        for box, label in zip(record.xyxy, record.label):
            total[Label(int(label))] += 1
            hidden[Label(int(label))] += core_retained(original, kept, box) < MAX_RETAINED
            whole[Label(int(label))] += box_hidden(original, kept, box, int(label))
    if frames != len(truth):
        raise RuntimeError(f"{stored} has {frames} frames, the ground truth {len(truth)}")
    share = {label.name.lower(): round(100 * hidden[label] / max(1, total[label]), 2) for label in Label}
    share.update({f"{label.name.lower()}_whole": round(100 * whole[label] / max(1, total[label]), 2)
                  for label in Label})
    return share


def write_config(folder: Path, name: str, video: Path, detect_every: int, realtime: bool,
                 base: Path | None = None) -> Path:
    """A config for one run: `base`'s settings (detectors, redaction, tracking) with this run's source and cadence."""
    data = (yaml.safe_load(base.read_text()) or {}) if base else {}
    data["source"] = {"kind": "file", "path": str(video), "realtime": realtime}
    data["gps"] = {"source": "none"}
    data.setdefault("track", {})["detect_every"] = detect_every
    data.pop("record", None)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def bench_anonymize(video: Path, config: Path, work: Path, truth: list[GroundTruth], repeats: int) -> dict:
    runs = []
    for attempt in range(repeats):
        out = work / f"{config.stem}-{attempt}"
        stats_file = work / f"{config.stem}-{attempt}.json"
        measured = run_measured([*DASHCAM, "anonymize", str(video), "-o", str(out), "--config", str(config),
                                 "--stats-json", str(stats_file)])
        measured.stats = json.loads(stats_file.read_text())
        runs.append(measured)
    result = summarize(runs, frames=runs[0].stats["frames_stored"])
    result["recall"] = stored_recall(video, out / video.name, truth)
    result["stage_ms_per_frame"] = runs[-1].stats["stage_ms_per_frame"]
    result["detect_ms_per_keyframe"] = runs[-1].stats["detect_ms_per_keyframe"]
    return result


def bench_live(video: Path, config: Path, work: Path, truth: list[GroundTruth]) -> dict:
    recordings, stats_file = work / f"{config.stem}-rec", work / f"{config.stem}.json"
    measured = run_measured([*DASHCAM, "run", "--config", str(config), "--recordings", str(recordings),
                             "--stats-json", str(stats_file)])
    stats = json.loads(stats_file.read_text())
    (stored,) = sorted(recordings.glob("*.mp4"))
    media_s = stats["frames_captured"] / 30
    result = {
        "wall_s": round(measured.wall_s, 2), "realtime_factor": round(media_s / stats["seconds"], 3),
        "frames_captured": stats["frames_captured"], "frames_stored": stats["frames_stored"],
        "dropped_overload": stats["dropped_overload"], "stale_frames": stats["stale_frames"],
        "detections_per_s": round(stats["frames_detected"] / stats["seconds"], 2),
        "cores_busy": round(measured.cores_busy, 2), "peak_rss_mb": round(measured.peak_rss_mb),
        "stage_ms_per_frame": stats["stage_ms_per_frame"], "detect_ms_per_keyframe": stats["detect_ms_per_keyframe"],
        # each sink's own busy time as a share of one core (a live preview's cost)
        "sink_core_share": {name: round(seconds / stats["seconds"], 4)
                            for name, seconds in stats.get("sink_seconds", {}).items()},
    }
    if stats["frames_stored"] == len(truth):  # with overload drops, frames no longer line up with the truth
        result["recall"] = stored_recall(video, stored, truth)
    return result


def make_15fps(source: Path, target: Path, mirror: bool) -> None:
    """Every other frame of the sample: a 15 fps camera's stream (mirrored: a second camera's different view)."""
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"crf": "16", "preset": "veryfast"}
        for index, image in enumerate(frames_of(source)):
            if index % 2 == 0:
                image = cv2.flip(image, 1) if mirror else image
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode(None))


def two_cameras_config(work: Path, front: Path, cabin: Path, base: Path | None = None) -> Path:
    """Two live cameras replaying `front` and `cabin`. `base` is a config with a `cameras:` list whose first two
    entries give the cameras' own settings (their sources are replaced); without it: the defaults, and no
    plates in the cabin."""
    data = (yaml.safe_load(base.read_text()) or {}) if base else {}
    cameras = data.get("cameras") or [{"name": "front"}, {"name": "cabin", "detect": {"plates": {"enabled": False}}}]
    if len(cameras) < 2:
        raise SystemExit(f"{base}: --two-cameras needs a config with two cameras")
    for camera, clip in zip(cameras, (front, cabin)):
        camera["source"] = {"kind": "file", "path": str(clip), "realtime": True}
        camera.get("record", {}).pop("directory", None)
    data.update({"gps": {"source": "none"}, "cameras": cameras[:2], "web": {"enabled": False}})
    data.setdefault("record", {})["directory"] = str(work / "cams-rec")
    path = work / f"two-cameras-{base.stem if base else 'default'}.yaml"
    path.write_text(json.dumps(data))
    return path


def _camera_stats(stats: dict) -> dict:
    return {"frames_captured": stats["frames_captured"], "frames_stored": stats["frames_stored"],
            "dropped_overload": stats["dropped_overload"], "stale_frames": stats["stale_frames"],
            "whole_frame_redacted": stats["whole_frame_redacted"],
            "detections_per_s": round(stats["frames_detected"] / stats["seconds"], 2),
            "detect_ms_per_keyframe": stats["detect_ms_per_keyframe"]}


def bench_two_cameras(work: Path, repeats: int, base: Path | None = None) -> dict:
    """Two 720p cameras at 15 fps each, replayed live: in one `dashcam run`, and as one process per camera
    (`--camera`) started together. Medians over `repeats` of each; peak memory summed over the processes."""
    front, cabin = work / "front_15fps.mp4", work / "cabin_15fps.mp4"
    if not front.exists():
        make_15fps(SAMPLE_VIDEO, front, mirror=False)
        make_15fps(SAMPLE_VIDEO, cabin, mirror=True)
    config = two_cameras_config(work, front, cabin, base)
    runs: dict[str, list[dict]] = {"one_process": [], "process_per_camera": []}
    for attempt in range(repeats):
        for mode in runs:
            stats_files = {name: work / f"{mode}-{attempt}-{name}.json" for name in ("front", "cabin")}
            if mode == "one_process":
                shared = work / f"{mode}-{attempt}.json"
                measured = [run_measured([*DASHCAM, "run", "--config", str(config), "--recordings",
                                          str(work / f"{mode}-{attempt}"), "--stats-json", str(shared)])]
                per_camera = dict(zip(("front", "cabin"), json.loads(shared.read_text())["cameras"].values()))
            else:
                names = [camera["name"] for camera in json.loads(config.read_text())["cameras"]]
                measured = run_together([[*DASHCAM, "run", "--config", str(config), "--camera", name, "--recordings",
                                          str(work / f"{mode}-{attempt}" / role), "--stats-json", str(path)]
                                         for name, (role, path) in zip(names, stats_files.items())])
                per_camera = {name: json.loads(path.read_text()) for name, path in stats_files.items()}
            runs[mode].append({"cameras": {name: _camera_stats(stats) for name, stats in per_camera.items()},
                               "wall_s": round(max(m.wall_s for m in measured), 2),
                               "cores_busy": round(sum(m.cpu_s for m in measured) / max(m.wall_s for m in measured), 2),
                               "peak_rss_mb": round(sum(m.peak_rss_mb for m in measured))})
            print(mode, attempt, runs[mode][-1], file=sys.stderr)
    return {mode: {"runs": found, "median_dropped": statistics.median(
                sum(c["dropped_overload"] for c in run["cameras"].values()) for run in found),
                   "median_blurred_whole": statistics.median(
                sum(c["whole_frame_redacted"] for c in run["cameras"].values()) for run in found),
                   "median_peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in found),
                   "median_cores_busy": statistics.median(run["cores_busy"] for run in found)}
            for mode, found in runs.items()}


def run_together(commands: list[list[str]]) -> list[Measured]:
    """Start every command at once and measure each (wall, CPU, peak RSS) as `run_measured` does."""
    started = time.perf_counter()
    processes = [subprocess.Popen(c, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands]
    measured = []
    for command, process in zip(commands, processes):
        _pid, status, usage = os.wait4(process.pid, 0)
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{err[-2000:]}")
        measured.append(Measured(time.perf_counter() - started, usage.ru_utime + usage.ru_stime,
                                 usage.ru_maxrss / 1024))
    return measured


def deface_command(venv: Path) -> Path:
    """deface's console script, installed into its own venv (its opencv-python would clash with ours)."""
    command = venv / "bin" / "deface"
    if not command.exists():
        print(f"installing deface into {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "deface", "onnxruntime"], check=True)
    return command


def bench_deface(command: Path, video: Path, work: Path, truth: list[GroundTruth], repeats: int) -> dict:
    runs = []
    for attempt in range(repeats):
        out = work / f"deface-{video.stem}-{attempt}.mp4"
        runs.append(run_measured([str(command), str(video), "-o", str(out)]))
    result = summarize(runs, frames=len(truth))
    result["recall"] = stored_recall(video, out, truth)
    return result


def summarize(runs: list[Measured], frames: int) -> dict:
    walls = [r.wall_s for r in runs]
    return {
        "fps_median": round(frames / statistics.median(walls), 2),
        "fps_runs": [round(frames / w, 2) for w in walls],
        "cores_busy": round(statistics.median(r.cores_busy for r in runs), 2),
        "peak_rss_mb": round(max(r.peak_rss_mb for r in runs)),
    }


def machine() -> dict:
    import onnxruntime
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__, "dashcam": __version__}


def bench_signing(segment_mb: int, repeats: int) -> dict:
    """Median seconds to describe+sign a segment of `segment_mb` MB (the signer thread's work), to sign once,
    and to verify it; the file is random bytes (hashing does not care what it holds)."""
    from edge.evidence.chain import FolderChain, SigningContext
    from edge.evidence.keys import DeviceKey
    from edge.evidence.verify import verify
    from edge.record.sidecar import Sidecar
    from edge.record.store import RecordingsFolder, StoredSegment, start_from_name, write_sidecar

    repeats = max(repeats, 5)
    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp:
        folder = RecordingsFolder(Path(tmp) / "rec")
        folder.create()
        key = DeviceKey.load_or_create(Path(tmp) / "keys")
        chain = FolderChain.open(folder, key)
        video = folder.root / "dashcam_2026-12-05_12-00-00Z.mp4"
        with video.open("wb") as handle:
            for _ in range(segment_mb):
                handle.write(os.urandom(1 << 20))
        write_sidecar(video.with_suffix(".json"), Sidecar(video=video.name, frame_count=1800, duration_s=60.0))
        segment = StoredSegment(video, start_from_name(video.name), video.stat().st_size, locked=False)
        context = SigningContext("0" * 64, f"privacy-dashcam {__version__}")
        sign_s, verify_s = [], []
        for _ in range(repeats):
            video.with_suffix(".manifest").unlink(missing_ok=True)
            started = time.perf_counter()
            chain.append(video, chain.describe(segment, context, after_restart=False))
            sign_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(1000):
            key.private.sign(b"x" * 1024)
        one_signature_us = (time.perf_counter() - started) * 1e3
        for _ in range(repeats):
            started = time.perf_counter()
            verify(video.with_suffix(".manifest"), key.public_path)
            verify_s.append(time.perf_counter() - started)
    return {"segment_mb": segment_mb, "describe_and_sign_s": round(statistics.median(sign_s), 3),
            "hash_mb_per_s": round(segment_mb / statistics.median(sign_s), 1),
            "ed25519_sign_us": round(one_signature_us, 1), "verify_segment_s": round(statistics.median(verify_s), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cadence", type=int, default=3, help="detect_every for the cadence configuration")
    parser.add_argument("--sizes", default="720,1080", help="which of 720 and 1080 to run")
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--no-live", action="store_true")
    parser.add_argument("--live-only", action="store_true", help="only the live runs (no anonymize, no deface)")
    parser.add_argument("--no-every-frame", action="store_true",
                        help="offline runs at the cadence only (detecting every frame takes 2-3x as long)")
    parser.add_argument("--deface-venv", type=Path, default=REPO / ".bench" / "deface-venv")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=FILE",
                        help="compare detector/redaction settings from FILE under NAME (repeatable; default: "
                             "the built-in defaults as 'default'); each is run in the same session")
    parser.add_argument("--signing", action="store_true", help="only measure signing and verifying a segment")
    parser.add_argument("--segment-mb", type=int, default=45, help="segment size for --signing")
    parser.add_argument("--two-cameras", action="store_true",
                        help="only two live 720p cameras at 15 fps: one process against one process per camera")
    args = parser.parse_args()
    if args.signing:
        print(json.dumps({"machine": machine(), "signing": bench_signing(args.segment_mb, args.repeats)}, indent=2))
        return
    if args.two_cameras:
        variants = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.config] or [("default", None)]
        with tempfile.TemporaryDirectory(prefix="bench-cameras-") as tmp:
            report = {"machine": machine(), "two_cameras": {
                name: bench_two_cameras(Path(tmp), args.repeats, base) for name, base in variants}}
        text = json.dumps(report, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
        return
    configs = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.config] or [("default", None)]
    truth_720 = load_sample_truth(SAMPLE_VIDEO.with_name("drive_720p.gt.json"))
    report: dict = {"machine": machine(), "cadence": args.cadence, "repeats": args.repeats, "results": {}}
    deface = None if args.no_deface else deface_command(args.deface_venv)
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        work = Path(tmp)
        for size in args.sizes.split(","):
            if size == "720":
                video, truth = SAMPLE_VIDEO, truth_720
            else:
                video, truth = work / "drive_1080p.mp4", scaled(truth_720, 1.5)
                make_1080p(SAMPLE_VIDEO, video)
            for label, base in configs:
                key = f"{size}p" if len(configs) == 1 else f"{size}p {label}"
                results = report["results"][key] = {}
                offline = [] if args.live_only else [("every_frame", 1), (f"cadence_{args.cadence}", args.cadence)]
                if args.no_every_frame:
                    offline = offline[1:]
                for name, every in offline:
                    config = write_config(work, f"{size}-{label}-{name}", video, every, realtime=False, base=base)
                    results[f"anonymize_{name}"] = bench_anonymize(video, config, work, truth, args.repeats)
                    print(key, name, results[f"anonymize_{name}"], file=sys.stderr)
                if not args.no_live:
                    config = write_config(work, f"{size}-{label}-live", video, args.cadence, realtime=True, base=base)
                    results["live_run"] = bench_live(video, config, work, truth)
                    print(key, "live", results["live_run"], file=sys.stderr)
            if deface is not None and not args.live_only:
                results = report["results"][f"{size}p deface"] = {}
                results["deface"] = bench_deface(deface, video, work, truth, args.repeats)
                print(size, "deface", results["deface"], file=sys.stderr)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
