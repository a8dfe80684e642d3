"""The `dashcam` command: parses arguments, wires components together, prints summaries.

This is the only module that builds the pipeline from config; nothing imports it.
User mistakes end with one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from edge import __version__
from edge.anonymize import Job, JobResult, collect_jobs
from edge.batch import Executor, run_batch
from edge.pieces import DEFAULT_PIECE_SECONDS
from edge.bench.annotations import FORMATS
from edge.bench.metrics import DEFAULT_TAU
from edge.progress import Progress, duration
from edge.bench.report import render_table
from edge.bench.runner import (BenchInput, bench_report, check_tau, load_truth, named_configs, parse_class_map,
                               planned_count, require_plots, run_bench, write_outputs)
from edge.board import read_sensors
from edge.camera import FrameSource, media_clock, open_source
from edge.camera.reconnect import ReconnectingSource
from edge.config import Config, config_digest, describe_defaults, load_config
from edge.detect.factory import build_detectors, guarded, model_ids
from edge.detect.guard import GuardedDetector
from edge.doctor import FAIL, DoctorOptions, run_doctor
from edge.errors import (ConfigError, SourceError, StorageError, UserError, interrupted_by, raise_pending_stop,
                         stop_answered, unwind_on_stop_signals)
from edge.evidence.chain import SegmentSigner, SigningContext
from edge.evidence.keys import DeviceKey, key_dir, public_pem
from edge.evidence.seal import seal_export
from edge.evidence.verify import verify
from edge.gps.privacy import LocationPolicy
from edge.gps.reader import SerialGpsReader, describe_fix
from edge.gps import FixProvider
from edge.gps.choose import location_provider
from edge.gps.stamp import LocationStamper
from edge.parking import GpsStillness, IgnitionSense, ParkingMode
from edge.pipeline import Pipeline, RunStats
from edge.record.atomic import is_regular_file, make_output_folder, open_regular, write_atomic
from edge.record.button import GpioLockButton
from edge.record.encoder import EncoderSettings
from edge.record.cameras import CameraFolder, CarFolders
from edge.record.export import copy_segments
from edge.record.export import export as export_segments
from edge.record.export import resolve as resolve_segments
from edge.record.gpx import export_gpx
from edge.record.gsensor import GSensorLock
from edge.record.ignition import GpioIgnition, SupplyVoltage
from edge.record.index import TripRow, TripsIndex
from edge.record.lease import LOCK_SIGNAL, running_recorder, signal_lock
from edge.record.loop import LoopOptions, LoopStore
from edge.record.segments import SegmentRecorder
from edge.record.store import UPLOAD_QUEUE_NAME, RecordingsFolder
from edge.redact import Redactor
from edge.service import CamerasWatchdog, notify
from edge.stamp import FrameStamp
from edge.sinks import Outlet, SinkPolicy
from edge.thermal import HeatGovernor, governor_for
from edge.web.auth import DOCTOR_NAME, PREVIEW_NAME, PasswordStore, web_state_dir
from edge.upload.queue import UploadQueue
from edge.upload.uploader import Uploader
from edge.wipe import plan_wipe, wipe

if TYPE_CHECKING:  # the web app is an optional extra: imported when it is used
    from edge.web.server import WebServer

log = logging.getLogger("edge.cli")

# Disk full, quota, read-only remount, card I/O error: the environment, not a bug.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                        format="dashcam: %(levelname)s: %(message)s")
    # Until a command installs its own stop handling (`run` finishes the segment), a stop signal unwinds.
    unwind_on_stop_signals()
    try:
        raise_pending_stop()
        return args.handler(args)
    except UserError as exc:
        print(f"dashcam: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except (KeyboardInterrupt, ImportError) as exc:  # ImportError: a signal during a lazy extension import
        signal_name = interrupted_by(exc)
        if signal_name is None and isinstance(exc, ImportError):
            raise
        print(f"dashcam: interrupted{f' by {signal_name}' if signal_name else ''}", file=sys.stderr)
        stop_answered()
        return 130
    except BrokenPipeError:  # before OSError, of which it is one
        # The reader of our output went away (`dashcam ... | head`); files are already complete.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        # A storage failure no module turned into a StorageError: still one line, and no restart loop.
        print(f"dashcam: error: {exc.strerror}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dashcam", description="Privacy-first dashcam: faces and plates are "
                                     "blurred on the device before anything is stored.")
    parser.add_argument("--version", action="version", version=f"dashcam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="record from the configured camera (default: the built-in sample clip)")
    _common(run)
    run.add_argument("--recordings", type=Path, help="folder for segments (overrides record.directory)")
    run.add_argument("--max-frames", type=int, help="stop after this many frames")
    run.add_argument("--fast", action="store_true", help="replay a video source as fast as possible")
    run.add_argument("--camera", action="append", metavar="NAME",
                     help="record only this camera of the config's cameras list (repeat for several; default: all)")
    run.set_defaults(handler=cmd_run)

    anonymize = sub.add_parser("anonymize", help="anonymize video and image files into another folder")
    _common(anonymize)
    anonymize.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="video, image, or folder of them")
    anonymize.add_argument("--output", "-o", type=Path, required=True, help="folder for the anonymized copies")
    anonymize.add_argument("--jobs", "-j", type=int,
                           help="workers, one onnxruntime thread each (default: one per core here, or one per CPU "
                           "of the Ray cluster; batches of fewer than 4 inputs and no long video run in one process)")
    anonymize.add_argument("--engine", choices=("local", "ray"), default="local",
                           help="where the workers run: processes on this machine, or actors on a Ray cluster (needs "
                           "the [cluster] extra and a filesystem every node sees at the same paths)")
    anonymize.add_argument("--ray-address", metavar="HOST:PORT",
                           help="the Ray cluster to join (default: RAY_ADDRESS, else a cluster of this machine alone)")
    anonymize.add_argument("--recursive", "-r", action="store_true",
                           help="search folders below the input folders too, keeping the tree in --output")
    anonymize.add_argument("--resume", action="store_true",
                           help="skip inputs the output folder's log says are done with the same config and models")
    anonymize.add_argument("--keep-audio", action="store_true",
                           help="copy each video's audio untouched into its output (off by default: voices, names "
                           "said aloud and a car's radio can identify people; nothing in the audio is anonymized)")
    anonymize.add_argument("--piece-seconds", type=float, default=DEFAULT_PIECE_SECONDS, metavar="S",
                           help="with --jobs above 1, videos (.mp4, .mov, .mkv) longer than 1.5 x S are cut into "
                           "pieces of about S seconds at their keyframes, shared by the workers and joined without "
                           f"re-encoding (default: {DEFAULT_PIECE_SECONDS:g})")
    anonymize.set_defaults(handler=cmd_anonymize)

    gps = sub.add_parser("gps", help="print live fixes and error counters from a GPS receiver (wiring check)")
    gps.add_argument("--port", default="/dev/ttyACM0", help="serial port or pyserial URL")
    gps.add_argument("--baud", type=int, default=9600, help="serial speed")
    gps.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    gps.add_argument("--verbose", "-v", action="count", default=0)
    gps.set_defaults(handler=cmd_gps)

    gpx = sub.add_parser("export-gpx", help="write the stored GPS track of a segment or folder as GPX 1.1")
    gpx.add_argument("target", type=Path, metavar="SEGMENT_OR_DIR")
    gpx.add_argument("--output", "-o", type=Path, help="GPX file (default: beside the segment, or DIR/track.gpx)")
    gpx.set_defaults(handler=cmd_export_gpx)

    lock = sub.add_parser("lock", help="keep the incident now: lock the current segment and the seconds around it")
    _recordings_option(lock)
    lock.set_defaults(handler=cmd_lock)

    trips = sub.add_parser("trips", help="list recorded trips and locked segments from the trips index")
    _recordings_option(trips)
    trips.add_argument("--segments", action="store_true", help="also list every segment of every trip")
    trips.set_defaults(handler=cmd_trips)

    export = sub.add_parser("export", help="copy a trip's or segment's anonymized clips, sidecars and GPX to a folder")
    _recordings_option(export)
    export.add_argument("target", metavar="TRIP_OR_SEGMENT", help="trip id from `dashcam trips`, or a segment name")
    export.add_argument("--output", "-o", type=Path, required=True, help="folder for the copies (e.g. a USB stick)")
    export.set_defaults(handler=cmd_export)

    _bench_parser(sub)
    _car_parsers(sub)
    _evidence_parsers(sub)

    config = sub.add_parser("config", help="print the default configuration, commented")
    config.set_defaults(handler=lambda _args: print(describe_defaults()) or 0)
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--config", "-c", type=Path, help="YAML config file (see configs/default.yaml)")
    sub.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")
    sub.add_argument("--stats-json", type=Path, metavar="FILE",
                     help="also write the run's counters and per-stage timings here as JSON")


def _recordings_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--config", "-c", type=Path, help="YAML config file whose record.directory is used")
    sub.add_argument("--recordings", type=Path, help="recordings folder (overrides record.directory)")
    sub.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")


def _install_stop_handlers() -> threading.Event:
    """SIGINT and SIGTERM finish the current segment and exit cleanly; one that start-up lost ends it now."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.warning("received %s; finishing the current segment", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    raise_pending_stop()  # before anything is stored
    return stop


def _guarded_detector(config: Config, live: bool) -> GuardedDetector:
    """Live sources get the live detector deadline; files only the one for a hung model."""
    return guarded(build_detectors(config.detect, live), config.detect, live)


# ---- dashcam run ----------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    selected = _selected_cameras(config, args.camera)
    stop = _install_stop_handlers()
    signal.signal(LOCK_SIGNAL, signal.SIG_IGN)  # until the recorders exist: a lock then must not kill us
    key = DeviceKey.load_or_create(key_dir(config.evidence.key_dir))
    cameras: list[_CameraRun] = []
    shared = _SharedRun(stop, key, CamerasWatchdog([name for name, _ in selected]))
    try:
        for name, camera_config in selected:
            if args.fast:
                camera_config = dataclasses.replace(camera_config, source=dataclasses.replace(camera_config.source,
                                                                                                realtime=False))
            directory = _camera_directory(args.recordings, name, camera_config, several=len(selected) > 1)
            cameras.append(_open_camera_run(name, camera_config, directory, shared, args.max_frames))
        _record(config, cameras, shared)
    finally:
        for camera in cameras:
            camera.close()
        shared.close()
    for camera in cameras:
        _print_camera_summary(camera, several=len(cameras) > 1)
    if shared.gsensor:  # one sensor for the car: its line once, after every camera's
        print(f"G-sensor               {shared.gsensor.events} incident locks ({shared.gsensor.read_errors} "
              "unreadable samples)")
    _write_run_stats(args.stats_json, cameras)
    if errors := [camera.error for camera in cameras if camera.error is not None]:
        raise errors[0]
    return 0


def _selected_cameras(config: Config, names: list[str] | None) -> list[tuple[str, Config]]:
    """The cameras this process records: all of `cameras:` (or the one top-level camera), or those named."""
    runs = config.camera_runs()
    if not names:
        return runs
    known = [name for name, _ in runs if name]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"--camera {unknown[0]}: no such camera in the config (cameras: "
                          f"{', '.join(known) or 'none; the config has no cameras list'})")
    return [(name, camera) for name, camera in runs if name in names]


def _camera_directory(recordings: Path | None, name: str, config: Config, several: bool) -> Path:
    """--recordings overrides record.directory; with several cameras, each gets its own folder under it."""
    if recordings is None:
        return Path(config.record.directory)
    return recordings / name if several else recordings


@dataclasses.dataclass
class _SharedRun:
    """What the cameras of one `dashcam run` share: the stop event, the device key, the GPS receiver, the lock
    triggers (signal, button, G-sensor), the web app and the systemd watchdog."""

    stop: threading.Event
    key: DeviceKey
    watchdog: CamerasWatchdog
    location: FixProvider | None = None
    location_opened: bool = False
    button: GpioLockButton | None = None
    gsensor: GSensorLock | None = None
    web: _RunningWeb | None = None
    ignition_lines: dict[tuple[str, bool], GpioIgnition] = dataclasses.field(default_factory=dict)

    def close(self) -> None:
        for part in (self.web, self.button, self.gsensor, self.location):
            if part is not None:
                part.stop()
        for line in self.ignition_lines.values():
            line.close()


@dataclasses.dataclass
class _CameraRun:
    """One camera of `dashcam run`: its source, detectors, store, recorder, pipeline and, after the run, stats."""

    name: str
    config: Config
    directory: Path
    source: FrameSource
    detector: GuardedDetector
    redactor: Redactor
    store: LoopStore
    signer: SegmentSigner
    recorder: SegmentRecorder
    max_frames: int
    stamper: LocationStamper | None = None
    governor: HeatGovernor | None = None
    parking: ParkingMode | None = None
    stats: RunStats | None = None
    error: BaseException | None = None

    def pipeline(self, shared: _SharedRun, extra_sinks: list[Outlet]) -> Pipeline:
        return Pipeline(self.source, self.detector, self.redactor, [Outlet(self.recorder, "recorder"), *extra_sinks],
                        stop=shared.stop, max_frames=self.max_frames, stamper=self.stamper, tracking=self.config.track,
                        live=self.config.source.is_live, on_frame_stored=shared.watchdog.stored_by(self.name),
                        governor=self.governor, gate=self.parking)

    def record(self, pipeline: Pipeline, stop: threading.Event) -> None:
        """Run the pipeline in the caller's thread; an error stops every camera and is kept to raise later."""
        try:
            self.stats = pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - kept; cmd_run raises it once every camera is closed
            self.error = exc
            stop.set()

    def close(self) -> None:
        if self.governor:
            self.governor.stop()
        self.source.close()
        self.detector.close()
        self.store.close()  # when the pipeline did not get to: the signer finishes, the lease is released


def _open_camera_run(name: str, config: Config, directory: Path, shared: _SharedRun, max_frames: int | None
                     ) -> _CameraRun:
    """Everything one camera needs, opened in order; the first camera's clock drives a GPS replay."""
    detector = _guarded_detector(config, live=config.source.is_live)
    source = _open_camera(config, shared.stop)
    if not shared.location_opened:
        shared.location = location_provider(config.gps, config.source.kind, media_clock(source))
        shared.location_opened = True
    location = shared.location
    policy = LocationPolicy.from_config(config.gps)
    stamp = FrameStamp(config.stamp, policy if location else None) if config.stamp.enabled else None
    store = LoopStore.open(directory, LoopOptions.from_config(config.record))  # lease, recovery, index, retention
    signer = _open_signer(store, shared.key, config)
    recorder = SegmentRecorder(store, source.width, source.height, source.fps, config.record.segment_seconds,
                               EncoderSettings.from_config(config.record), model_ids(config.detect), source.name,
                               location_policy=policy if location else None,
                               track_interval_s=config.gps.track_interval_s, camera=name)
    signer.watch(store, recorder.events)
    camera = _CameraRun(name, config, directory, source, detector, Redactor(config.redact, overlay=stamp), store,
                        signer, recorder, max_frames if max_frames is not None else config.source.max_frames)
    if config.upload.enabled:
        uploader = Uploader.open(store.folder, config.upload, shared.key)
        uploader.watch(store, recorder.events)
        uploader.start()
    camera.stamper = LocationStamper(location, policy) if location else None
    # Live runs slow detection, then lower face resolution, then blur whole frames when the board runs hot.
    camera.governor = (governor_for(detector.detectors, read_sensors, config.track.detect_every,
                                    config.detect.faces.input_long_side, config.track.delay_frames, source.fps)
                       if config.source.is_live else None)
    if config.parking.enabled:
        camera.parking = _parking_mode(config, shared)
    return camera


def _record(config: Config, cameras: list[_CameraRun], shared: _SharedRun) -> None:
    """Start the shared lock triggers and the web app, then record every camera until the stop (or the end)."""
    recorders = [camera.recorder for camera in cameras]
    parkings = [camera.parking for camera in cameras if camera.parking is not None]

    def lock_all(t_mono_ns: int | None = None) -> None:
        for recorder in recorders:
            recorder.request_lock(t_mono_ns)

    signal.signal(LOCK_SIGNAL, lambda _signum, _frame: lock_all())
    if config.record.lock_gpio_line:
        shared.button = GpioLockButton.open(config.record.lock_gpio_line, lock_all)
    shared.gsensor = GSensorLock.open(config.gsensor, _on_jolt(lock_all, parkings))
    first = cameras[0]
    if config.web.enabled:
        car = CarFolders([CameraFolder(camera.name, camera.store.folder) for camera in cameras])
        shared.web = _start_web(config, car, shared.key, shared.location)
    pipelines = [camera.pipeline(shared, [shared.web.preview_outlet] if shared.web and camera is first else [])
                 for camera in cameras]
    for camera in cameras:
        print(f"dashcam: recording {camera.source.name} ({camera.source.width}x{camera.source.height} @ "
              f"{camera.source.fps:.2f} fps) to {camera.directory}/ ... Ctrl-C stops, `dashcam lock` keeps an "
              "incident", file=sys.stderr)
    for part in (shared.location, shared.button, shared.gsensor):
        if part is not None:
            part.start()
    for camera in cameras:
        if camera.governor:
            camera.governor.start()
    notify("READY=1")  # systemd Type=notify: started; WATCHDOG=1 now follows stored frames
    if len(cameras) == 1:
        first.record(pipelines[0], shared.stop)
        return
    threads = [threading.Thread(target=camera.record, args=(pipeline, shared.stop), name=f"camera-{camera.name}")
               for camera, pipeline in zip(cameras, pipelines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join: Ctrl-C's handler runs in this thread between waits
            thread.join(0.5)


def _print_camera_summary(camera: _CameraRun, several: bool) -> None:
    if camera.stats is None:
        return
    if several:
        print(f"\n== camera {camera.name} ==")
    _print_run_summary(camera.stats, [info.video_path for info in camera.recorder.finished])
    if camera.signer.failed:
        print(f"signing                {camera.signer.failed} segments could not be signed now; they are at the "
              "next start")
    if camera.parking:
        reason = camera.parking.stop_reason
        print(f"parking mode           {camera.stats.parked_skipped} frames skipped while parked, "
              f"{camera.parking.events} events recorded at full rate{'; stopped: ' + reason if reason else ''}")
    if isinstance(camera.source, ReconnectingSource) and camera.source.blind_periods:
        print(f"camera blind           {camera.source.blind_seconds:.1f} s in {camera.source.blind_periods} outages")


def _on_jolt(lock_all: Callable[[int], None], parkings: list[ParkingMode]) -> Callable[[int], None]:
    """A G-sensor impact locks the incident around its onset on every camera and, while parked, records at full
    rate."""
    def on_jolt(onset_mono_ns: int) -> None:
        lock_all(onset_mono_ns)
        for parking in parkings:
            parking.on_jolt()
    return on_jolt


def _parking_mode(config: Config, shared: _SharedRun) -> ParkingMode:
    """Parking mode with the configured ignition sense; a GPIO line is opened once for every camera."""
    parking, location = config.parking, shared.location
    voltage = (SupplyVoltage(Path(parking.voltage_path), parking.voltage_scale, parking.ignition_on_volts)
               if parking.voltage_path else None)
    ignition: IgnitionSense
    if parking.ignition == "gpio":
        key = (parking.gpio_line, parking.gpio_active_low)
        if key not in shared.ignition_lines:  # a line can be requested once: the cameras share it
            shared.ignition_lines[key] = GpioIgnition.open(parking.gpio_line, parking.gpio_active_low)
        ignition = shared.ignition_lines[key]
    elif parking.ignition == "gps":
        if location is None:
            raise ConfigError("parking.ignition is gps but there is no GPS receiver (gps.source)")
        ignition = GpsStillness(location, parking.still_minutes * 60)
    else:
        assert voltage is not None  # config_from_dict demands voltage_path for ignition voltage
        ignition = voltage
    return ParkingMode(parking, ignition, voltage.volts if voltage else None, shared.stop)


def _open_signer(store: LoopStore, key: DeviceKey, config: Config) -> SegmentSigner:
    """The signer of the folder's chain (edge.evidence.chain): signs what recovery left unsigned, then each
    finished segment."""
    try:
        return SegmentSigner.open(store.folder, key, SigningContext(config_digest(config),
                                                                    f"privacy-dashcam {__version__}"))
    except BaseException:  # noqa: BLE001 - re-raised; the store's lease is released on the way out
        store.close()
        raise


def _start_web(config: Config, car: CarFolders, key: DeviceKey, location: FixProvider | None) -> _RunningWeb:
    """The web app in a thread of the recorder, with the live view fed by a preview sink."""
    from edge.web.preview import LatestJpeg, PreviewSink

    latest = LatestJpeg()
    preview = PreviewSink(latest, config.web.live_fps, config.web.live_width)
    gps_fix = (lambda: location.latest() is not None) if location else (lambda: None)
    server = _web_server(config, car, key, live=latest, gps_fix=gps_fix)
    server.start()
    print(f"dashcam: web app on {server.url}", file=sys.stderr)
    return _RunningWeb(server, Outlet(preview, "preview", SinkPolicy.DROP_OLDEST, depth=1))


@dataclasses.dataclass
class _RunningWeb:
    server: WebServer
    preview_outlet: Outlet

    def stop(self) -> None:
        self.server.stop()


def _web_server(config: Config, car: CarFolders, key: DeviceKey | None, **live: object) -> WebServer:
    """The app and its server; one clear line when the [web] extra or the password is missing."""
    try:
        from edge.web.app import WebContext, build_app
        from edge.web.footage import Footage
        from edge.web.server import WebServer
    except ImportError as exc:
        raise SourceError(f"the web app needs the [web] extra ({exc.name} is missing): "
                          "pip install 'privacy-dashcam[web]'") from None
    state = _web_state(config)
    passwords = PasswordStore(state)
    if not passwords.is_set():
        raise SourceError(f"no web app password in {state}: set one with dashcam serve --set-password")
    context = WebContext(Footage(car.lead.folder, config, key, car), config, passwords, sensors=read_sensors,
                         doctor_results=lambda: _doctor_results(state),
                         doctor_preview=lambda: _doctor_preview(state), secure_cookie=config.web.tls,
                         **live)  # type: ignore[arg-type]
    return WebServer(build_app(context), config.web, state)


def _web_state(config: Config) -> Path:
    """Where the web app's password, certificate and the last doctor results live."""
    return web_state_dir(config.web.state_dir, key_dir(config.evidence.key_dir))


def _doctor_results(state: Path) -> list[dict[str, str]] | None:
    try:
        return json.loads((state / DOCTOR_NAME).read_text())
    except (OSError, ValueError):
        return None


def _doctor_preview(state: Path) -> bytes | None:
    """The redacted preview JPEG `dashcam doctor` wrote (a regular file only, never through a link)."""
    try:
        with os.fdopen(open_regular(state / PREVIEW_NAME), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _open_camera(config: Config, stop: threading.Event) -> FrameSource:
    """Live cameras are reopened with backoff when they stall or drop out; files and folders end when they end."""
    if config.source.is_camera:
        return ReconnectingSource(lambda: open_source(config.source), stop)
    return open_source(config.source)


def _write_stats(path: Path | None, stats: RunStats | dict) -> None:
    if path is None:
        return
    data = stats.to_dict() if isinstance(stats, RunStats) else stats
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def _write_run_stats(path: Path | None, cameras: list[_CameraRun]) -> None:
    """One camera: its counters, as `_write_stats`; several: {"cameras": {name: counters}}."""
    done = {camera.name: camera.stats for camera in cameras if camera.stats is not None}
    if not done:
        return
    if len(cameras) == 1:
        _write_stats(path, next(iter(done.values())))
    else:
        _write_stats(path, {"cameras": {name: stats.to_dict() for name, stats in done.items()}})


def _print_run_summary(stats: RunStats, files: list[Path]) -> None:
    stages = ", ".join(f"{name} {ms:.1f}" for name, ms in stats.stage_ms_per_frame().items())
    fail_closed = (f"{stats.whole_frame_redacted} blurred whole, {stats.dropped} dropped ({stats.detector_failures} "
                   f"detector failures, {stats.detector_timeouts} of them timeouts, {stats.stale_frames} outside the "
                   "gap bound)")
    rows = [
        ("frames captured", f"{stats.frames_captured}"),
        ("frames detected", f"{stats.frames_detected} ({stats.detect_ms_per_keyframe:.0f} ms each; "
                            f"{stats.scene_cuts} scene cuts)"),
        ("frames stored", f"{stats.frames_stored}"),
        ("speed", f"{stats.fps:.1f} fps ({stats.seconds:.1f} s)"),
        ("faces redacted", f"{stats.faces}"),
        ("plates redacted", f"{stats.plates}"),
        ("blurred for heat", f"{stats.heat_blurred} frames"),
        ("fail-closed frames", fail_closed),
        ("dropped by overload", f"{stats.dropped_overload} frames (never stored)"),
        ("paused in privacy zone", f"{stats.paused_in_zone} frames"),
        ("ms per frame", stages),
        *((f"skipped by {name}", f"{count} frames (a slow viewer)") for name, count in stats.sink_skipped.items()
          if count),
        ("files written", f"{len(files)}"),
    ]
    print()
    for label, value in rows:
        print(f"{label:<22} {value}")
    for path in files:
        print(f"  {path}")


# ---- dashcam gps and export-gpx ---------------------------------------------------------------------------

def cmd_gps(args: argparse.Namespace) -> int:
    """Print the latest fix and the error counters once a second, for checking the wiring."""
    reader = SerialGpsReader(args.port, args.baud)
    stop = _install_stop_handlers()
    print(f"dashcam: reading NMEA from {args.port} at {args.baud} baud ... Ctrl-C stops", file=sys.stderr)
    reader.start()
    started = time.monotonic()
    try:
        while not stop.wait(1.0):
            counters = " ".join(f"{k}={v}" for k, v in sorted(reader.counters().items()) if v)
            print(f"{describe_fix(reader.latest())}  |  {counters or 'no data yet'}", flush=True)
            if args.seconds and time.monotonic() - started >= args.seconds:
                break
    finally:
        reader.stop()
    return 0


def cmd_export_gpx(args: argparse.Namespace) -> int:
    if not args.target.exists():
        raise SourceError(f"not found: {args.target}")
    output, points = export_gpx(args.target, args.output)
    print(f"wrote {output} ({points} track points)")
    return 0


# ---- dashcam lock, trips and export -----------------------------------------------------------------------

def _car(args: argparse.Namespace) -> tuple[CarFolders, Config]:
    """Every camera's recordings folder (the config's `cameras:`, else record.directory); --recordings names one."""
    config = load_config(args.config)
    if args.recordings:
        return CarFolders.of([("", args.recordings)]), config
    return CarFolders.of([(name, Path(camera.record.directory)) for name, camera in config.camera_runs()]), config


def _recordings(args: argparse.Namespace) -> tuple[RecordingsFolder, Config]:
    """The lead (first) camera's folder: its trips are the car's trips."""
    car, config = _car(args)
    return car.lead.folder, config


@contextlib.contextmanager
def _open_index(folder: RecordingsFolder, config: Config) -> Iterator[TripsIndex]:
    if not folder.root.is_dir():
        raise SourceError(f"no recordings folder {folder.root} (pass --recordings or --config)")
    # While a recorder runs (or on a read-only card) the index is only read: the recorder owns the file.
    writable = running_recorder(folder) is None and os.access(folder.root, os.W_OK)
    index = TripsIndex.open(folder, config.record.trip_gap_seconds, writable=writable)
    try:
        yield index
    finally:
        index.close()


def cmd_lock(args: argparse.Namespace) -> int:
    """Every camera's recorder locks (one process for all cameras is signalled once)."""
    car, _config = _car(args)
    signalled: dict[int, RecordingsFolder] = {}
    refusals = []
    for camera in car.cameras:
        pid = running_recorder(camera.folder)
        if pid in signalled:
            continue
        try:
            signalled[signal_lock(camera.folder)] = camera.folder
        except StorageError as exc:
            refusals.append(exc)
    if not signalled:
        raise refusals[0]
    for pid, folder in signalled.items():
        print(f"lock requested from the recorder (pid {pid}): the current segment and the seconds around it "
              f"(record.lock_before_seconds, lock_after_seconds) go to {folder.locked_dir}/")
    for refusal in refusals:
        print(f"dashcam: warning: {refusal}", file=sys.stderr)
    return 0


def cmd_trips(args: argparse.Namespace) -> int:
    car, config = _car(args)
    folder = car.lead.folder
    with _open_index(folder, config) as index:
        trips, locked = index.trips(), index.segments(locked_only=True)
        per_trip = {trip.id: index.segments(trip_id=trip.id) for trip in trips} if args.segments else {}
    if not trips:
        print(f"no recorded segments in {folder.root}")
        return 0
    others = f"  {'OTHER CAMERAS'}" if car.others else ""
    print(f"{'TRIP':>5}  {'START (UTC)':19}  {'END (UTC)':19}  {'DURATION':>9}  {'DISTANCE':>9}  "
          f"{'SEGMENTS':>8}  LOCKED{others}")
    for trip in trips:
        linked = car.linked(trip.start_utc, trip.end_utc) if car.others else []
        counts = "  ".join(f"{camera.name} {sum(s.camera == camera.name for s in linked)}" for camera in car.others)
        row = (f"{trip.id:>5}  {_utc_text(trip.start_utc)}  {_utc_text(trip.end_utc)}  {duration(trip.duration_s):>9}"
               f"  {_km(trip.distance_m):>9}  {trip.segment_count:>8}  ")
        print(row + (f"{trip.locked_count:>6}  {counts}" if counts else f"{trip.locked_count}"))
        for segment in per_trip.get(trip.id, []):
            flags = " locked" if segment.locked else ""
            flags += " recovered" if segment.recovered else ""
            print(f"       {segment.name}  {duration(segment.duration_s):>9}  {_km(segment.distance_m):>9}{flags}")
        for other in linked if args.segments else []:
            print(f"       {other.camera}/{other.stored.name}{' locked' if other.stored.locked else ''}")
    if locked:
        print(f"\nlocked segments ({folder.locked_dir}/, never deleted automatically):")
        for segment in locked:
            print(f"  {segment.name}  trip {segment.trip_id}  {_utc_text(segment.start_utc)}  "
                  f"{duration(segment.duration_s)}")
    if is_regular_file(folder.root / UPLOAD_QUEUE_NAME):
        print()
        _print_upload_status(folder)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The lead camera's trip or segment; for a trip, the other cameras' footage of its time in a folder each."""
    car, config = _car(args)
    folder = car.lead.folder
    keys = key_dir(config.evidence.key_dir)
    key = DeviceKey.load(keys)
    with _open_index(folder, config) as index:
        result = export_segments(args.target, args.output, folder, index)
        seal = seal_export(args.output, result.label, result.segments, result.files, folder, key) if key else None
        trip = next((t for t in index.trips() if f"trip-{t.id}" == result.label), None)
    print(f"exported {result.label} to {args.output}/ ({result.track_points} track points):")
    for path in result.files + (seal.files if seal else []):
        print(f"  {path}")
    if trip is not None and car.others:
        _export_other_cameras(car, result.label, trip, args.output, key)
    if seal is None:
        print(f"dashcam: warning: no device key in {keys}: this export carries no "
              "signatures (`dashcam verify` cannot check it)", file=sys.stderr)
    elif seal.unsigned:
        print(f"dashcam: warning: {len(seal.unsigned)} segments have no manifest (recorded before signing, or "
              f"not signed yet): {', '.join(seal.unsigned)}", file=sys.stderr)
    else:
        print(f"check it with: dashcam verify {args.output} --key {args.output / 'device-key.pub.pem'}  "
              f"(device key {seal.fingerprint})")
    return 0


def _export_other_cameras(car: CarFolders, label: str, trip: TripRow, output: Path, key: DeviceKey | None) -> None:
    """The other cameras' segments over the exported trip's time (as `dashcam trips` links them), each camera in
    `output/<name>/`, sealed alike."""
    linked = car.linked(trip.start_utc, trip.end_utc)
    for camera in car.others:
        segments = [s.stored for s in linked if s.camera == camera.name]
        if not segments:
            continue
        result = copy_segments(label, segments, output / camera.name, camera.folder)
        seal = (seal_export(output / camera.name, result.label, segments, result.files, camera.folder, key)
                if key else None)
        print(f"  camera {camera.name}: {len(segments)} segments of the same time in {output / camera.name}/")
        for path in result.files + (seal.files if seal else []):
            print(f"    {path}")


def _utc_text(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _km(metres: float | None) -> str:
    return "-" if metres is None else f"{metres / 1000:.1f} km"


# ---- dashcam doctor and wipe (edge/doctor.py, edge/wipe.py) ---------------------------------------------

def _car_parsers(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check camera, GPS, models, disk, clock and temperature before a drive")
    doctor.add_argument("--config", "-c", type=Path, help="YAML config file to check (default: the defaults)")
    doctor.add_argument("--gps-seconds", type=float, default=3.0, help="listening time per GPS baud rate tried")
    doctor.add_argument("--preview", type=Path, metavar="FILE.jpg",
                        help="where the redacted preview frame is written (default: doctor-preview.jpg in the web "
                             "app's state folder, shown on its status page)")
    doctor.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")
    doctor.set_defaults(handler=cmd_doctor)
    wipe_cmd = sub.add_parser("wipe", help="erase all recordings, locked ones too, and the trips index (resale)")
    _recordings_option(wipe_cmd)
    wipe_cmd.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    wipe_cmd.set_defaults(handler=cmd_wipe)


def cmd_doctor(args: argparse.Namespace) -> int:
    """One line per check; exit 1 when any check failed."""
    config = load_config(args.config)
    preview = args.preview or _doctor_state(config) / PREVIEW_NAME
    checks = run_doctor(config, DoctorOptions(gps_seconds=args.gps_seconds, preview_path=preview))
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(f"{check.verdict.upper():4}  {check.name:{width}}  {check.detail}")
        if check.fix:
            print(f"{'':4}  {'':{width}}  fix: {check.fix}")
    failed = sum(c.verdict == FAIL for c in checks)
    print(f"\n{failed} failed, {sum(c.verdict == 'warn' for c in checks)} warnings")
    _keep_doctor_results(config, checks)
    return 1 if failed else 0


def _doctor_state(config: Config) -> Path:
    """The web app's state folder, made if missing; doctor keeps its results and preview there."""
    state = _web_state(config)
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.info("no web app state folder %s: %s", state, exc)
    return state


def _keep_doctor_results(config: Config, checks: list) -> None:
    """For the web app's status page; a machine where this cannot be written just does not show them."""
    try:
        write_atomic(_doctor_state(config) / DOCTOR_NAME, json.dumps([dataclasses.asdict(c) for c in checks]).encode())
    except (OSError, UserError) as exc:
        log.info("the doctor results were not kept for the web app: %s", exc)


def cmd_wipe(args: argparse.Namespace) -> int:
    """Every camera's folder: a car sold with its cabin footage left behind is the leak this command prevents."""
    car, _config = _car(args)
    for camera in car.cameras:
        plan = plan_wipe(camera.folder)
        print(f"{camera.folder.root}: {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) of recordings, "
              "locked ones included, and the trips index")
    if not args.yes:
        try:
            answer = input("erase them all? type yes: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            print("nothing erased")
            return 1
    for camera in car.cameras:
        done = wipe(camera.folder)
        print(f"erased {len(done.files)} files in {camera.folder.root}")
        for other in done.others:
            print(f"  kept (not dashcam's): {other}")
    print("the card may still hold old blocks (flash wear levelling): reformat it before giving it away")
    return 0


# ---- dashcam key and verify (edge/evidence/) ---------------------------------------------------------------

def _evidence_parsers(sub: argparse._SubParsersAction) -> None:
    key = sub.add_parser("key", help="show or export this dashcam's public key (made on first use)")
    key.add_argument("--config", "-c", type=Path, help="YAML config file whose evidence.key_dir is used")
    key.add_argument("--show", action="store_true", help="print the fingerprint and the public key (the default)")
    key.add_argument("--export", type=Path, metavar="FILE", help="also write the public key (PEM) to FILE")
    key.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")
    key.set_defaults(handler=cmd_key)
    check = sub.add_parser("verify", help="check signed footage: signatures, files, and the chain (exit 0 = all good)")
    check.add_argument("target", type=Path, metavar="FILE_OR_DIR",
                       help="an export folder, a recordings folder, or one segment's .mp4 or .manifest")
    check.add_argument("--key", type=Path, metavar="PUBLIC_KEY",
                       help="the dashcam's public key (default: device-key.pub.pem in the folder; then check its "
                       "fingerprint with the owner)")
    check.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")
    check.set_defaults(handler=cmd_verify)
    upload = sub.add_parser("upload", help="send queued anonymized segments to the upload.remote (rclone); "
                            "optionally queue a trip or segment first")
    _recordings_option(upload)
    upload.add_argument("target", nargs="?", metavar="TRIP_OR_SEGMENT", help="queue this trip or segment first")
    upload.add_argument("--status", action="store_true", help="only print what is sent and queued")
    upload.set_defaults(handler=cmd_upload)
    serve = sub.add_parser("serve", help="the web app for a phone: trips, clips, lock, export, live view, status")
    _recordings_option(serve)
    serve.add_argument("--set-password", action="store_true",
                       help="set the web app's password (asked twice; from a script, one line on stdin)")
    serve.set_defaults(handler=cmd_serve)


def cmd_upload(args: argparse.Namespace) -> int:
    """Queue a trip or segment when named, then send what is queued; `--status` only reports."""
    folder, config = _recordings(args)
    if args.status:
        _print_upload_status(folder)
        return 0
    if not config.upload.remote:
        raise SourceError("no upload.remote in the config: set it to an rclone remote and folder, e.g. nas:dashcam")
    key = DeviceKey.load(key_dir(config.evidence.key_dir))
    if key is None:
        raise SourceError(f"no device key in {key_dir(config.evidence.key_dir)}: nothing here was signed, "
                          "and only signed footage is uploaded")
    uploader = Uploader.open(folder, config.upload, key)
    try:
        if args.target:
            with _open_index(folder, config) as index:
                label, segments = resolve_segments(args.target, folder, index)
            added = uploader.queue_segments([s.video_path.stem for s in segments])
            print(f"queued {label}: {added} segments ({len(segments) - added} were queued or sent before)")
        result = uploader.upload_pending()
    finally:
        uploader.close()
    print(f"sent {result.sent} segments to {config.upload.remote}" + (
        f"; {result.postponed} wait for their manifest" if result.postponed else "") + (
        "; waiting for the Wi-Fi network " + config.upload.wifi_ssid if result.waiting else ""))
    _print_upload_status(folder)
    if result.failed:
        print(f"dashcam: error: upload failed: {result.last_error}", file=sys.stderr)
        return 1
    return 0


def _print_upload_status(folder: RecordingsFolder) -> None:
    if not is_regular_file(folder.root / UPLOAD_QUEUE_NAME):
        print("uploads: none (nothing was ever queued)")
        return
    queue = UploadQueue.open(folder.root)
    try:
        status = queue.status()
    finally:
        queue.close()
    print(f"uploads: {status.done} sent ({status.sent_bytes / 1e6:.1f} MB), {status.queued} queued, "
          f"{status.gone} deleted before they could be sent"
          + (f"; last error: {status.last_error}" if status.last_error else ""))


def cmd_serve(args: argparse.Namespace) -> int:
    """The web app in front, until Ctrl-C; or set its password."""
    car, config = _car(args)
    folder = car.lead.folder
    state = _web_state(config)
    if args.set_password:
        PasswordStore(state).set(_read_new_password())
        print(f"web app password set ({state / 'web-password'}, scrypt hash, mode 0600)")
        return 0
    if not folder.root.is_dir():
        raise SourceError(f"no recordings folder {folder.root} (pass --recordings or --config)")
    server = _web_server(config, car, DeviceKey.load(key_dir(config.evidence.key_dir)))
    print(f"dashcam: web app on {server.url} (Ctrl-C stops)", file=sys.stderr)
    server.run()
    return 0


def _read_new_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("new web app password: ")
        if getpass.getpass("again: ") != first:
            raise SourceError("the two passwords differ: nothing changed")
        return first
    return sys.stdin.readline().rstrip("\n")  # from a script: one line on standard input


def cmd_key(args: argparse.Namespace) -> int:
    directory = key_dir(load_config(args.config).evidence.key_dir)
    existed = DeviceKey.load(directory) is not None
    key = DeviceKey.load_or_create(directory)
    if not existed:
        print(f"made a new device key in {directory}/ (back up {key.directory}/device-key.pem: without it, "
              "new footage verifies with a new public key only)", file=sys.stderr)
    if args.export:
        write_atomic(args.export, public_pem(key.public))
        print(f"wrote the public key to {args.export}", file=sys.stderr)
    print(f"fingerprint {key.fingerprint}")
    print(public_pem(key.public).decode().rstrip())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """One line per segment and gap, then the summary; exit 1 when anything does not verify."""
    report = verify(args.target, args.key)
    for line in report.lines:
        print(line)
    for note in report.notes:
        print(f"note: {note}")
    if report.ok:
        print(f"verified: {report.verified} segments, signatures, files and chain all good")
        return 0
    print(f"NOT VERIFIED: {len(report.failures)} problems, {report.verified} segments good")
    return 1


# ---- dashcam bench (the engine is edge/bench/runner.py; docs/benchmark.md) ----------------------------------

def _bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure how much of each annotated face and plate the redaction hides")
    bench.add_argument("--input", type=Path, required=True, metavar="VIDEO_OR_IMAGE_DIR",
                       help="annotated video file, or folder of images (searched recursively)")
    bench.add_argument("--annotations", type=Path, required=True, metavar="FILE_OR_DIR",
                       help="ground truth for the input (see docs/benchmark.md for the formats)")
    bench.add_argument("--format", default="auto", choices=FORMATS, help="annotation format (default: auto)")
    bench.add_argument("--config", "-c", type=Path, action="append", default=[],
                       help="YAML config; repeat to compare configs side by side (default: the defaults)")
    bench.add_argument("--class-map", action="append", default=[], metavar="NAME=face|plate|ignore",
                       help="map an annotation class name or number; repeatable")
    bench.add_argument("--tau", type=float, default=DEFAULT_TAU, help="share of a box that must be hidden")
    bench.add_argument("--max-frames", type=int, default=0, help="score only the first N frames or images")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    bench.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report as Markdown")
    bench.add_argument("--plots", type=Path, metavar="DIR", help="also write PNG plots (needs matplotlib)")
    bench.add_argument("--verbose", "-v", action="count", default=0, help="more log output (-vv for debug)")
    bench.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    check_tau(args.tau)
    classes = parse_class_map(args.class_map)
    configs = named_configs(args.config)
    if args.plots:
        require_plots()
    subject = BenchInput.open(args.input, args.max_frames)
    truth = load_truth(subject, args.annotations, args.format, classes)
    runs = []
    for number, (name, config) in enumerate(configs, 1):
        print(f"dashcam: bench run {number}/{len(configs)} '{name}' on {subject.path}", file=sys.stderr)
        with Progress(planned_count(subject, truth), unit=subject.unit) as progress:
            runs.append(run_bench(subject, truth, config, name, tau=args.tau, progress=progress))
    report = bench_report(runs, subject, truth)
    print(render_table(report), end="")
    for path in write_outputs(report, args.json, args.markdown, args.plots):
        print(f"wrote {path}")
    return 0


# ---- dashcam anonymize (the engine is edge/anonymize.py) ---------------------------------------------------

def cmd_anonymize(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    jobs = collect_jobs(args.inputs, args.output, recursive=args.recursive, keep_audio=args.keep_audio)
    make_output_folder(args.output, "output folder")  # before loading models: a bad --output fails at once
    if args.jobs is not None and args.jobs < 1:
        raise SourceError(f"--jobs {args.jobs}: at least 1")
    if not 1 <= args.piece_seconds <= 86400:
        raise SourceError(f"--piece-seconds {args.piece_seconds:g}: between 1 and 86400")
    if args.engine == "ray":
        from edge.cluster import RayCluster  # the [cluster] extra: imported only when asked for

        cluster = RayCluster(args.ray_address)
        try:
            return _anonymize(args, config, jobs, args.jobs or cluster.cpus, cluster.pool)
        finally:
            cluster.close()
    return _anonymize(args, config, jobs, args.jobs or os.cpu_count() or 1, None)


def _anonymize(args: argparse.Namespace, config: Config, jobs: list[Job], workers: int,
               engine: Callable[[Config, int], Executor] | None) -> int:
    """The batch, with a progress bar on a terminal (stderr) or a plain line per input otherwise, and a summary."""
    stop = _install_stop_handlers()
    failures, done, started = 0, 0, time.monotonic()
    bar: Progress | None = None
    terminal = sys.stdout.isatty() and sys.stderr.isatty()  # the bar draws on stderr

    def advance(tasks_done: int, tasks: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(tasks, unit="task", bar=True)
        bar.update(tasks_done)

    def report(result: JobResult) -> None:
        nonlocal failures, done
        done += 1
        elapsed = time.monotonic() - started
        progress = f"[{done}/{len(jobs)}, {duration(elapsed / done * (len(jobs) - done))} left]"
        stats = result.stats
        if stats is None:
            failures += 1
            if bar is not None:
                bar.close()  # the error on a line of its own; the bar goes on below it
            print(f"dashcam: error: {result.error}", file=sys.stderr)
            return
        if terminal:
            return  # the bar shows it
        print(f"{progress} {result.job.source} -> {result.job.output}: {stats.frames_stored} frames, "
              f"{stats.faces} faces, {stats.plates} plates, {stats.whole_frame_redacted + stats.dropped} fail-closed, "
              f"{stats.fps:.1f} fps")

    try:
        total, skipped = run_batch(jobs, args.output, config, workers, stop, report, resume=args.resume,
                                   piece_seconds=args.piece_seconds, engine=engine, on_progress=advance)
    finally:
        if bar is not None:
            bar.close()
    done += skipped
    seconds = time.monotonic() - started
    timeouts = f" ({total.detector_timeouts} detections timed out)" if total.detector_timeouts else ""
    resumed = f" ({skipped} done before, skipped)" if skipped else ""
    print(f"\n{done - failures} of {len(jobs)} inputs anonymized into {args.output}/{resumed}: "
          f"{total.frames_stored} frames, {total.faces} faces, {total.plates} plates, "
          f"{total.whole_frame_redacted} frames blurred whole, {total.dropped} dropped{timeouts}, "
          f"{seconds:.1f} s")
    where = f"{args.engine}, {workers} worker{'s' if workers != 1 else ''}"
    print(f"throughput: {(done - skipped - failures) / seconds:.2f} inputs/s, {total.frames_stored / seconds:.1f} "
          f"frames/s ({where}; detection {total.stage_seconds.get('detect', 0.0):.1f} s, encoding "
          f"{total.stage_seconds.get('store', 0.0):.1f} s of worker time)")
    _write_stats(args.stats_json, total)
    return 2 if failures else 0
