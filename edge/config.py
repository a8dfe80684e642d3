"""Typed configuration, loaded from YAML and validated before anything starts.

Every field has a default and a one-line description (`help` in its metadata), so
`dashcam config --defaults` can print a commented file. Unknown keys, wrong types and
out-of-range values raise `ConfigError` naming the file and the dotted key. Each
component receives only its own section.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from edge.detect.models import keys_for
from edge.errors import ConfigError

# Fixed choices are Literal types: the loader checks values against them and mypy checks the code's comparisons.
SourceKind = Literal["sample", "file", "v4l2", "gstreamer", "images", "picamera2"]
Tiles = Literal["none", "road", "full"]
RedactMode = Literal["gaussian", "pixelate", "fill"]
FaceShape = Literal["ellipse", "rectangle"]
OnFailure = Literal["blur_frame", "drop_frame"]
MaskHide = Literal["fill", "blur"]
SpeedUnit = Literal["kmh", "mph"]
StampCorner = Literal["bottom-left", "bottom-right", "top-left", "top-right"]
Mirror = Literal["off", "stills", "files", "always"]
Codec = Literal["libx264", "mpeg4"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]
RetentionPreset = Literal["eu-72h", "loop-only", "keep"]
GpsSource = Literal["auto", "none", "serial", "replay", "gpsd"]
UploadSelect = Literal["locked", "trips", "all"]
UploadWhen = Literal["always", "wifi"]

# Model choices come from the model registry (edge/detect/models.py), one entry per model.
FACE_MODELS = keys_for("face")
# A config is a few kB; anything much larger is the wrong file (or an attempt to exhaust memory).
MAX_CONFIG_BYTES = 1 << 20
# Keys of older releases, and what took their place: an old config gets told, not just refused.
RENAMED = {"detect.faces.model": "detect.faces.models, a list (e.g. models: [yunet, yolo5face])"}


def _opt(default: Any, help: str, **rules: Any) -> Any:
    """A config field: its default, one-line description and validation rules."""
    meta = {"help": help, **rules}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _section(cls: type, help: str) -> Any:
    return field(default_factory=cls, metadata={"help": help})


CAMERA_KINDS = ("v4l2", "gstreamer", "picamera2")  # live cameras; the other kinds are files and folders
DEFAULT_MAX_PIXELS = 50_000_000
# The highest `source.max_pixels` accepted: below Pillow's own refusal (2 x 89.5 MP), which therefore always
# means "over the limit" (see edge.camera.images).
DECOMPRESSION_BOMB_PIXELS = 150_000_000


@dataclass(frozen=True)
class SourceConfig:
    kind: SourceKind = _opt("sample", "where frames come from")
    path: str = _opt("", "video file or image folder, for kind file or images")
    device: str = _opt("/dev/video0", "V4L2 device path or index, for kind v4l2")
    pipeline: str = _opt("", "GStreamer pipeline ending in appsink, for kind gstreamer")
    width: int = _opt(0, "requested capture width for v4l2 and picamera2 (0 = device default)", min=0,
                     max=16384)
    height: int = _opt(0, "requested capture height for v4l2 and picamera2 (0 = device default)", min=0,
                      max=16384)
    fps: float = _opt(0.0, "requested capture rate for v4l2, gstreamer and picamera2 (0 = source default)", min=0,
                     max=1000)
    realtime: bool = _opt(True, "replay a video file at its own frame rate, as a camera would deliver it")
    max_frames: int = _opt(0, "stop after this many frames (0 = until the source ends)", min=0,
                          max=10**9)
    max_pixels: int = _opt(DEFAULT_MAX_PIXELS, "refuse image and video inputs with more pixels a frame than this, "
                                               "read from the file's header before decoding (a 400 MP PNG of 389 kB "
                                               "needs 2.6 GB): 50 MP takes any 8K video or phone photo",
                           min=1, max=DECOMPRESSION_BOMB_PIXELS)

    @property
    def is_camera(self) -> bool:
        return self.kind in CAMERA_KINDS

    @property
    def is_live(self) -> bool:
        """A camera, or a file replayed at its own rate: frames arrive on their own clock and must not wait."""
        return self.is_camera or (self.kind in ("sample", "file") and self.realtime)


@dataclass(frozen=True)
class FaceDetectorConfig:
    enabled: bool = _opt(True, "detect and redact faces")
    models: list[str] = _opt(["yunet", "yolo5face"], "face models whose boxes are all hidden (they miss different "
                                                     "faces): yunet, yolo5face, centerface", choices=FACE_MODELS,
                             min_items=1)
    score_threshold: float = _opt(0.15, "minimum score kept; low on purpose, a missed face is worse than an extra "
                                        "blur (dev heads hidden: 88.3 % at 0.25, 91.2 % at 0.15)", min=0.0, max=0.9)
    nms_iou: float = _opt(0.4, "overlap above which the weaker of two boxes is dropped (at least 0.2: lower "
                                  "would merge neighbouring faces or plates into one)", min=0.2, max=1.0)
    input_long_side: int = _opt(1280, "frame is resized so its long side is at most this before detection (at least "
                                                  "320: smaller finds no face of a dashcam's size); yunet and "
                                                  "centerface only, yolo5face sees a 640 letterbox", min=320, max=4096)
    head_width: float = _opt(1.35, "a face box is widened to the head by this factor (measured: heads are a median "
                                   "1.34x as wide as YuNet's face box)", min=1.0, max=3.0)
    head_height: float = _opt(1.45, "and made this much taller (measured median 1.44x)", min=1.0, max=3.0)
    head_raise: float = _opt(0.05, "and its centre raised by this share of the face height (hair sits above the "
                                   "face)", min=0.0, max=0.5)


@dataclass(frozen=True)
class PeopleConfig:
    enabled: bool = _opt(True, "a second line: a COCO detector finds persons (their heads are hidden even when no "
                               "face detector fires) and vehicles (searched for plates at native resolution)")
    model: str = _opt("yolov5n_coco_int8", "person and vehicle model: yolov5n_coco_int8 (0.57x the CPU time of the "
                                           "fp32 file; at threshold 0.25 it hides as many dev heads as fp32 at 0.3) "
                                           "or yolov5n_coco (fp32, for GPUs)",
                      choices=keys_for("people"))
    score_threshold: float = _opt(0.25, "minimum person or vehicle score kept (int8 scores run about 0.02 "
                                        "lower than fp32)", min=0.05, max=0.9)
    nms_iou: float = _opt(0.5, "overlap above which the weaker of two boxes of a class is dropped", min=0.2, max=1.0)
    heads: bool = _opt(True, "hide the head region at the top of every person box")
    head_width: float = _opt(0.7, "head width as a share of the person box's width (wider is safer: a person seen "
                                  "from the side or with arms out has a wide box)", min=0.2, max=1.0)
    head_height_share: float = _opt(0.3, "the head box is never taller than this share of the person box (a "
                                         "whole body is about 7 heads tall); a bust, under 1.6 times as tall "
                                         "as wide or cut by the frame's bottom edge, gets at least 0.8 x 0.5",
                                   min=0.1, max=1.0)
    plates_in_vehicles: bool = _opt(True, "search each vehicle for plates at native resolution, all vehicles packed "
                                          "into one or more 640 px canvases")
    max_canvases: int = _opt(2, "at most this many vehicle canvases per keyframe (vehicles that do not fit are "
                                "left to the whole-frame pass)", min=1, max=8)
    live_every: int = _opt(2, "live sources: run the second line on every n-th keyframe only (the keyframes "
                              "between still run faces and plates; what the second line found is carried to "
                              "them from the keyframe before and after); files always run it", min=1, max=4)


@dataclass(frozen=True)
class PlateDetectorConfig:
    enabled: bool = _opt(True, "detect and redact licence plates")
    model: str = _opt("plate_yolov8n_int8", "plate model: the int8 file (2.5x less CPU than fp32, every fp32 box kept "
                                            "on held-out photos) or plate_yolov8n, the fp32 file, for accelerators "
                                            "where int8 is slower", choices=keys_for("plate"))
    score_threshold: float = _opt(0.03, "minimum score kept; low on purpose, favouring recall (the int8 model "
                                        "scores faint plates lower than fp32; dev plates hidden 88.1 % at 0.06, "
                                        "90.6 % at 0.03 for 0.1 point more area; at most 0.9: near 1 nothing is "
                                        "kept)", min=0.0, max=0.9)
    nms_iou: float = _opt(0.5, "overlap above which the weaker of two boxes is dropped (at least 0.2: lower "
                                  "would merge neighbouring faces or plates into one)", min=0.2, max=1.0)
    tiles: Tiles = _opt("none", "also search native-resolution tiles for distant plates: none, road (the band "
                              "between road_top and road_bottom), or full (the whole frame); one inference per tile")
    road_top: float = _opt(0.35, "top of the road band, as a share of the frame height from the top", min=0.0, max=1.0)
    road_bottom: float = _opt(0.9, "bottom of the road band (below it: the bonnet)", min=0.0, max=1.0)
    tile_every: int = _opt(1, "search the tiles on every n-th detection only (the tracker holds boxes between)",
                           min=1, max=30)
    photo_tile_scale: float = _opt(1.25, "photos (not video frames), and their mirror images, are also searched "
                                         "in 640 px tiles of the photo enlarged by this factor, where the model "
                                         "finds plates it scores near 0 in the whole photo (0: off, else 1 to 3; "
                                         "about 6 more inferences per look at a 1024 px photo at 1.25)",
                                   min=0.0, max=3.0)


@dataclass(frozen=True)
class DetectConfig:
    providers: list[str] = _opt(["CPUExecutionProvider"], "onnxruntime execution providers, in order of preference")
    intra_op_threads: int = _opt(0, "threads per model inside onnxruntime (0 = onnxruntime decides)", min=0,
                                max=64)
    timeout_ms: int = _opt(3000, "a detector slower than this on one frame counts as failed", min=1,
                            max=600000)
    offline_timeout_ms: int = _opt(60000, "the same for files (anonymize, run --fast, bench), which have no live "
                                          "deadline: only catches a hung model", min=1000, max=600000)
    side_by_side: bool = _opt(False, "run the face, plate and person models at the same time in threads of their "
                                     "own (pair with intra_op_threads: 1) instead of one after the other")
    mirror: Mirror = _opt("files", "look again at the left-right flipped image with the face and plate models and "
                                   "hide what either look finds: files (the default: photos, and every "
                                   "mirror_every-th keyframe of a video file, which has no live deadline; a live "
                                   "camera looks once), stills (photos only), always (live cameras too: too slow "
                                   "for 30 fps on 2 cores) or off. Measured: dev heads hidden 91.2 -> 92.7 %, plates "
                                   "90.6 -> 92.1 %; a dashcam-like drive's faces 87.0 -> 93.7 %, plates 93.4 -> "
                                   "95.2 %; offline 720p at 0.85x the speed of stills")
    mirror_every: int = _opt(2, "files and always: look twice at every n-th keyframe of a video (the tracker "
                                "holds what the mirrored look found to the keyframes between); photos always "
                                "get both looks", min=1, max=8)
    models_dir: str = _opt("", "folder with the .onnx files (empty = the models shipped with dashcam)")
    faces: FaceDetectorConfig = _section(FaceDetectorConfig, "face detectors")
    plates: PlateDetectorConfig = _section(PlateDetectorConfig, "licence-plate detector")
    people: PeopleConfig = _section(PeopleConfig, "second line: persons (heads) and vehicles (plates)")


@dataclass(frozen=True)
class TrackConfig:
    detect_every: int = _opt(3, "run the detectors on every n-th frame and track boxes between (1 = every frame); "
                                "a live camera is detected as often as the detectors keep up, at most this often",
                             min=1, max=30)
    delay_frames: int = _opt(24, "live sources: most frames held back waiting for the detection after them, so "
                                 "every frame is covered from both sides; a frame arriving to a full line is "
                                 "dropped, never stored (files wait for the next detection)", min=2, max=120)
    hold_frames: int = _opt(15, "a track the detector misses on a keyframe can still be matched, and its box "
                                "interpolated, this many frames after it was last seen", min=0, max=300)
    growth_per_frame: float = _opt(0.03, "a carried box grows by this share of its size per frame away from a "
                                         "detection, since its position is a guess", min=0.01, max=0.5)
    match_iou: float = _opt(0.1, "overlap with a track's predicted box needed to continue that track",
                            min=0.0, max=1.0)
    max_jump_per_frame: float = _opt(0.5, "a detection that does not overlap a track still continues it when its "
                                          "centre moved at most this many box sides per frame since", min=0.0, max=5.0)
    max_gap_frames: int = _opt(30, "a frame whose two bracketing detections are more than this many frames apart "
                                   "is blurred whole (the tracker's guess is not trusted that long)", min=1, max=60)
    max_gap_ms: float = _opt(1000.0, "the same bound in time on the source's timeline (live overload, a detector "
                                     "that falls behind)", min=1.0, max=2000.0)
    scene_cut_threshold: float = _opt(0.5, "change between two frames' grey thumbnails (mean absolute difference "
                                           "of standardized pixels) above which a scene cut is declared: no box is "
                                           "carried across it and both sides are detected", min=0.2, max=0.6)


@dataclass(frozen=True)
class PrivacyMask:
    name: str = _opt("", "what it hides, for doctor and logs, e.g. dashboard screen")
    points: list[tuple[float, float]] = _opt([], "the polygon's corners as [x, y] shares of the frame's width and "
                                                 "height from its top-left corner (0 to 1, at least 3 points), so "
                                                 "a mask fits every resolution of the camera", min=0.0, max=1.0,
                                             min_items=3)
    hide: MaskHide = _opt("fill", "fill (black: nothing of it is kept) or blur (its colours stay)")


@dataclass(frozen=True)
class RedactConfig:
    mode: RedactMode = _opt("gaussian", "how regions are hidden")
    face_mask_scale: float = _opt(1.25, "head boxes grow by this factor about their centre (a margin: the face "
                                        "detectors' boxes are already widened to the head, see detect.faces.head_*)",
                                   min=1.0, max=4.0)
    plate_mask_scale: float = _opt(1.4, "plate boxes grow by this factor about their centre (1.3 until 2026-12-06: "
                                         "on a dashcam-like drive a plate whose box the detector drew a little short "
                                         "leaked for 10 frames; 1.4 hid 97.5 % of plate box-frames against 94.4 %)",
                                   min=1.0, max=4.0)
    face_shape: FaceShape = _opt("ellipse", "mask shape for faces (plates are always rectangles)")
    on_failure: OnFailure = _opt("blur_frame", "when detection fails: blur the whole frame or drop it")
    masks: list[PrivacyMask] = _opt([], "fixed privacy masks of this camera (a neighbour's windows seen from the "
                                        "driveway, the dashboard screen, the rear seats): hidden in every frame "
                                        "before anything is stored, whatever the detectors find; see them with "
                                        "`dashcam doctor`, which writes a redacted preview")


@dataclass(frozen=True)
class StampConfig:
    enabled: bool = _opt(False, "burn a line of text into each stored frame, drawn after redaction: the "
                                "detectors never see it, so it cannot keep them from finding a face or plate")
    time: bool = _opt(True, "the frame's local date and time (the GPS-corrected clock)")
    timezone: str = _opt("", "IANA time zone for the stamp, e.g. Europe/Berlin (empty = the system's)")
    speed: bool = _opt(True, "the GPS speed, when there is a fix")
    speed_unit: SpeedUnit = _opt("kmh", "kmh or mph")
    coordinates: bool = _opt(False, "also the position, rounded to gps.precision_decimals and never inside a "
                                    "privacy zone; off by default: a stamp travels with every clip shared")
    corner: StampCorner = _opt("bottom-left", "where the text sits")
    height: float = _opt(0.035, "text height as a share of the frame height", min=0.01, max=0.2)


@dataclass(frozen=True)
class RecordConfig:
    directory: str = _opt("recordings", "where anonymized segments are written")
    segment_seconds: float = _opt(60.0, "length of one segment file", min=1.0, max=3600.0)
    codec: Codec = _opt("libx264", "video encoder")
    crf: int = _opt(23, "libx264 quality (lower = better, bigger files)", min=0, max=51)
    preset: Preset = _opt("veryfast", "libx264 speed preset")
    retention: RetentionPreset = _opt("eu-72h", "unlocked footage: eu-72h (deleted after max_age_hours; oldest "
                                      "first when full), loop-only (oldest first when full), keep (never; "
                                      "recording stops when full)")
    max_age_hours: float = _opt(72.0, "age at which unlocked footage is deleted, for retention eu-72h", min=0.01,
                                 max=87600.0)
    max_bytes: int = _opt(0, "disk budget of the recordings folder in bytes, locked footage included (0 = none)",
                          min=0, max=2**60)
    min_free_bytes: int = _opt(500_000_000, "bytes always left free on the recordings' filesystem (0 = no floor)",
                               min=0, max=2**60)
    lock_before_seconds: float = _opt(30.0, "an incident lock also keeps the footage this long before it", min=0.0,
                                       max=3600.0)
    lock_after_seconds: float = _opt(30.0, "an incident lock also keeps the footage this long after it", min=0.0,
                                      max=3600.0)
    lock_gpio_line: str = _opt("", "GPIO button that locks an incident, as CHIP:LINE, e.g. gpiochip0:17, pressed = "
                               "pulled to ground (empty = none; needs the gpiod package)")
    trip_gap_seconds: float = _opt(300.0, "segments less than this apart belong to one trip in the index", min=0.0,
                                    max=86400.0)


GSensorSource = Literal["none", "iio", "i2c"]
GSensorChip = Literal["mpu6050", "adxl345"]
GSensorSensitivity = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class GSensorConfig:
    source: GSensorSource = _opt("none", "accelerometer whose jolts lock an incident: none (off), iio (a chip with a "
                                 "kernel driver, under /sys/bus/iio), i2c (a chip without one; needs smbus2)")
    iio_device: str = _opt("", "for source iio: iio:deviceN, its folder, or the chip's name such as lis3dh (empty = "
                           "the first accelerometer found)")
    i2c_bus: int = _opt(1, "for source i2c: N of /dev/i2c-N (1 = a Raspberry Pi's header pins 3 and 5)", min=0,
                        max=255)
    i2c_chip: GSensorChip = _opt("mpu6050", "for source i2c: the chip, mpu6050 or adxl345")
    i2c_address: int = _opt(0, "for source i2c: the chip's address, e.g. 0x69 (0 = the chip's default: 0x68 "
                            "mpu6050, 0x53 adxl345)", min=0, max=0x77)
    sensitivity: GSensorSensitivity = _opt("medium", "jolt that locks, beyond gravity: high 1.5 g, medium 2.5 g, "
                                           "low 3.5 g")
    threshold_g: float = _opt(0.0, "jolt in g beyond gravity that locks, instead of sensitivity's (0 = from "
                              "sensitivity)", min=0.0, max=16.0)
    min_duration_ms: float = _opt(20.0, "the jolt must last this long: a pothole's spike is shorter, a crash longer",
                                  min=0.0, max=1000.0)
    rate_hz: float = _opt(100.0, "samples per second (below about 100 a pothole's spike looks as long as a crash)",
                          min=50.0, max=400.0)
    cooldown_s: float = _opt(10.0, "no second lock for this long after one", min=0.0, max=3600.0)


IgnitionSense = Literal["gpio", "voltage", "gps"]


@dataclass(frozen=True)
class ParkingConfig:
    enabled: bool = _opt(False, "when the car is off, record at parking.fps and at full rate only around motion "
                                "or a G-sensor jolt; every frame is redacted as when driving")
    ignition: IgnitionSense = _opt("voltage", "how dashcam knows the car is off: gpio (a line wired to the "
                                              "ignition through a divider or optocoupler), voltage (the supply "
                                              "voltage from a sysfs file: the alternator charges at 13-14.5 V, a "
                                              "resting battery is under 13 V) or gps (standing still for "
                                              "still_minutes)")
    gpio_line: str = _opt("", "for ignition gpio: CHIP:LINE, e.g. gpiochip0:27 (needs the gpiod package)")
    gpio_active_low: bool = _opt(False, "for ignition gpio: the line reads low while the ignition is on")
    voltage_path: str = _opt("", "for ignition voltage: a sysfs file with the supply voltage, e.g. "
                                 "/sys/class/power_supply/<name>/voltage_now or an ADC's in_voltageN_raw")
    voltage_scale: float = _opt(1e-6, "volts per unit of that file (voltage_now is in microvolts: 1e-6; an ADC "
                                      "behind a divider: its scale times the divider's ratio)", min=1e-9, max=1e3)
    ignition_on_volts: float = _opt(13.2, "for ignition voltage: at or above this the engine runs (charging)",
                                    min=5.0, max=60.0)
    battery_stop_volts: float = _opt(12.0, "stop recording when the supply falls below this, so the car still "
                                           "starts (a 12 V battery at 12.0 V is about half charged; 0 = never, or "
                                           "no voltage file)", min=0.0, max=60.0)
    still_minutes: float = _opt(5.0, "for ignition gps: parked after standing still this long", min=0.5, max=120.0)
    fps: float = _opt(2.0, "frames kept per second while parked and nothing moves", min=0.5, max=10.0)
    motion_share: float = _opt(0.004, "share of a 160x90 thumbnail that must change between two kept frames to "
                                      "count as motion (0.004: about 58 pixels, a person walking past at 10 m)",
                               min=0.0005, max=0.5)
    event_seconds: float = _opt(20.0, "after motion or a jolt, record at the camera's full rate this long",
                                min=1.0, max=600.0)
    max_hours: float = _opt(12.0, "stop recording after this long parked (0 = never)", min=0.0, max=240.0)


@dataclass(frozen=True)
class PrivacyZone:
    name: str = _opt("", "a label for logs, e.g. home (never the coordinates)")
    lat: float = _opt(0.0, "centre latitude in degrees", min=-90.0, max=90.0)
    lon: float = _opt(0.0, "centre longitude in degrees", min=-180.0, max=180.0)
    radius_m: float = _opt(300.0, "radius in metres", min=1.0, max=1_000_000.0)


@dataclass(frozen=True)
class GpsConfig:
    source: GpsSource = _opt("auto", "where fixes come from; auto = the sample log with the sample clip, else none")
    port: str = _opt("/dev/ttyACM0", "serial port or pyserial URL, for source serial")
    baud: int = _opt(9600, "serial speed, for source serial", choices=(4800, 9600, 19200, 38400, 57600, 115200))
    log: str = _opt("", "NMEA log file for source replay (empty = the sample's log)")
    gpsd_host: str = _opt("127.0.0.1", "gpsd host, for source gpsd")
    gpsd_port: int = _opt(2947, "gpsd port, for source gpsd", min=1, max=65535)
    stale_after_s: float = _opt(2.0, "a fix older than this is not attached to frames", min=0.1, max=3600.0)
    precision_decimals: int = _opt(4, "decimals kept in stored coordinates (4 = about 11 m)", min=0, max=8)
    track_interval_s: float = _opt(1.0, "one track point per this many seconds in the sidecar", min=0.0,
                                   max=3600.0)
    privacy_zones: list[PrivacyZone] = _opt([], "circles (home, work) inside which no location is stored")
    pause_in_zones: bool = _opt(False, "also stop recording video while inside a privacy zone")


@dataclass(frozen=True)
class EvidenceConfig:
    key_dir: str = _opt("", "folder of the device's signing key (empty = $XDG_STATE_HOME/privacy-dashcam, else "
                        "~/.local/state/privacy-dashcam); keep it off the card or drive the footage is on")


@dataclass(frozen=True)
class UploadConfig:
    enabled: bool = _opt(False, "send anonymized segments (with sidecars and manifests) to an rclone remote; "
                         "nothing leaves the car while false")
    remote: str = _opt("", "rclone remote and folder, e.g. nas:dashcam (set the remote up with `rclone config`)")
    rclone_config: str = _opt("", "rclone config file holding the remote (empty = rclone's own default)")
    select: UploadSelect = _opt("locked", "what is sent: locked (incidents only), trips (every segment of a trip, "
                                "once the run ends), all (every segment as it finishes)")
    when: UploadWhen = _opt("always", "always, or wifi: only while joined to the Wi-Fi network wifi_ssid")
    wifi_ssid: str = _opt("", "the Wi-Fi network (e.g. home) uploads wait for, for when: wifi")
    bandwidth: str = _opt("1M", "rclone --bwlimit: bytes per second, e.g. 500K, 2M, or off")
    retry_seconds: float = _opt(60.0, "wait after a failed upload (no network) before the next try", min=1.0,
                                max=86400.0)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = _opt(False, "also serve the web app (`dashcam serve`) while `dashcam run` records")
    host: str = _opt("127.0.0.1", "address to listen on: 127.0.0.1 is this machine only; the hotspot's address "
                     "(e.g. 10.42.0.1) lets phones on the car's Wi-Fi in (see the README's web app section)")
    port: int = _opt(8080, "TCP port", min=1, max=65535)
    tls: bool = _opt(False, "HTTPS with a self-signed certificate the app makes on first use")
    state_dir: str = _opt("", "folder of the password hash and the TLS certificate (empty = evidence.key_dir's)")
    live_fps: float = _opt(2.0, "frames per second of the live view (it only ever sees redacted frames)", min=0.2,
                           max=10.0)
    live_width: int = _opt(640, "width in pixels of the live view's frames", min=160, max=1920)
    map_tiles_url: str = _opt("", "opt-in map tiles under trip tracks, e.g. https://tile.openstreetmap.org/{z}/{x}/"
                              "{y}.png; empty = none. The tile server then learns where the car went")


@dataclass(frozen=True)
class CameraConfig:
    name: str = _opt("", "the camera's name, e.g. front, cabin or rear (letters, digits, - and _): it names the "
                         "camera's segment folder and its entry in the summary")
    source: SourceConfig = _section(SourceConfig, "this camera's input")
    detect: DetectConfig = _section(DetectConfig, "this camera's detectors (a cabin needs faces far more than plates)")
    track: TrackConfig = _section(TrackConfig, "this camera's detection cadence and tracking")
    redact: RedactConfig = _section(RedactConfig, "how this camera's regions are hidden, and its fixed masks")
    stamp: StampConfig = _section(StampConfig, "this camera's burned-in stamp")
    record: RecordConfig = _section(RecordConfig, "this camera's segments (directory: default <record.directory>/"
                                                  "<name>)")
    parking: ParkingConfig = _section(ParkingConfig, "this camera in parking mode")


# The sections a camera of `cameras:` may set; what it leaves out it takes from the top level.
CAMERA_SECTIONS = tuple(f.name for f in dataclasses.fields(CameraConfig) if f.name != "name")
CAMERA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass(frozen=True)
class Config:
    source: SourceConfig = _section(SourceConfig, "camera or file input")
    gps: GpsConfig = _section(GpsConfig, "GPS receiver and location privacy")
    detect: DetectConfig = _section(DetectConfig, "face and plate detection")
    track: TrackConfig = _section(TrackConfig, "detection cadence and tracking between detections")
    redact: RedactConfig = _section(RedactConfig, "how detected regions are hidden")
    stamp: StampConfig = _section(StampConfig, "optional burned-in time and speed on recorded frames (dashcam run)")
    record: RecordConfig = _section(RecordConfig, "segment files")
    parking: ParkingConfig = _section(ParkingConfig, "parking mode: low-rate recording while the car is off")
    gsensor: GSensorConfig = _section(GSensorConfig, "accelerometer (G-sensor) that locks an incident on a crash's "
                                      "jolt (off by default)")
    evidence: EvidenceConfig = _section(EvidenceConfig, "signed manifests: the device key (see `dashcam verify`)")
    upload: UploadConfig = _section(UploadConfig, "opt-in upload of anonymized footage with rclone (off by default)")
    web: WebConfig = _section(WebConfig, "the local web app: trips, clips, lock, export, live view, status")
    cameras: list[CameraConfig] = _opt([], "several cameras recorded at once (front, cabin, rear), each with "
                                           "its own source, detectors, masks and segment folder; each camera "
                                           "takes every section it leaves out from the top level (empty = one "
                                           "camera: the top-level source)")

    def camera_runs(self) -> list[tuple[str, Config]]:
        """(name, the config of that camera alone) for each camera; one unnamed entry without `cameras:`."""
        if not self.cameras:
            return [("", self)]
        return [(camera.name, self.for_camera(camera)) for camera in self.cameras]

    def for_camera(self, camera: CameraConfig) -> Config:
        """This config with the camera's sections in place of the top-level ones, and no camera list."""
        sections = {name: getattr(camera, name) for name in CAMERA_SECTIONS}
        return dataclasses.replace(self, cameras=[], **sections)


def config_digest(config: Config) -> str:
    """sha256 of the config as sorted JSON: two runs with the same settings give the same hash (manifests,
    resumable batches)."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_config(path: Path | None) -> Config:
    """Read and validate a YAML config; `None` gives the defaults."""
    if path is None:
        return Config()
    try:
        with Path(path).open("rb") as handle:  # read no more than a config can be: /dev/zero ends too
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES} bytes: a config is a few kB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): is it the right file?") from None
    if "\x00" in text:
        raise ConfigError(f"config file {path} is binary, not YAML text: is it the right file?")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or ""
        detail = f": {problem}" if problem.startswith("duplicate key") else ""
        raise ConfigError(f"{path}:{where} is not valid YAML{detail}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    return config_from_dict(data or {}, origin=str(path))



class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (plain YAML keeps the last, silently:
    a second `detect:` section would quietly replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let SafeLoader say what is wrong with it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def config_from_dict(data: Any, origin: str = "<config>") -> Config:
    if isinstance(data, dict) and "cameras" in data:
        data = {**data, "cameras": _camera_entries(data, origin)}
    config = _build(Config, data, origin, prefix="")
    _check_upload(config.upload, origin)
    for i, (_name, camera) in enumerate(config.camera_runs()):
        _check_camera(camera, origin, f"cameras[{i}]." if config.cameras else "")
    return config


def _camera_entries(data: dict, origin: str) -> list[dict]:
    """Each camera's entry with the top-level sections it leaves out filled in (merged key by key), so the
    loader checks every camera's full settings and names the camera's key in its messages."""
    cameras = data["cameras"]
    if not isinstance(cameras, list) or not all(isinstance(c, dict) for c in cameras):
        raise ConfigError(f"{origin}: cameras: expected a list of cameras, each a mapping with a name")
    top_redact = data.get("redact")
    if isinstance(top_redact, dict) and top_redact.get("masks"):  # a redact that is no mapping is refused below
        raise ConfigError(f"{origin}: redact.masks is set at the top level but there are cameras: give each camera "
                          "its own masks under cameras[N].redact.masks (a mask fits one camera's view)")
    names: list[str] = []
    entries = []
    top_record = data.get("record")
    top_directory = str(top_record.get("directory", RecordConfig.directory) if isinstance(top_record, dict)
                        else RecordConfig.directory)  # a top-level record that is no mapping is refused below
    for i, camera in enumerate(cameras):
        name = camera.get("name")
        if not isinstance(name, str) or not CAMERA_NAME.fullmatch(name):
            raise ConfigError(f"{origin}: cameras[{i}].name: expected a name of letters, digits, - and _ "
                              f"(such as front or cabin), got {name!r}")
        if name in names:
            raise ConfigError(f"{origin}: cameras[{i}].name: {name!r} is used twice")
        names.append(name)
        entry = {**camera}
        for section in CAMERA_SECTIONS:
            entry[section] = _merged(data.get(section), camera.get(section))
        own_record = camera.get("record")
        if isinstance(entry["record"], dict) and not (isinstance(own_record, dict) and "directory" in own_record):
            entry["record"] = {**entry["record"], "directory": f"{top_directory.rstrip('/')}/{name}"}
        entries.append(entry)
    return entries


def _merged(top: Any, own: Any) -> Any:
    """`own` over `top`, mapping by mapping; anything else in `own` replaces `top` whole (lists included)."""
    if own is None:
        return top if top is not None else {}
    if isinstance(top, dict) and isinstance(own, dict):
        return {**top, **{key: _merged(top.get(key), value) if isinstance(value, dict) else value
                          for key, value in own.items()}}
    return own


def _check_camera(config: Config, origin: str, scope: str) -> None:
    """The checks across keys, for one camera's settings (`scope` names the camera in messages)."""
    if not (config.detect.faces.enabled or config.detect.plates.enabled):
        raise ConfigError(f"{origin}: {scope}detect.faces.enabled and {scope}detect.plates.enabled are both false: "
                          "nothing would be anonymized, so dashcam refuses to record")
    track = config.track
    if track.detect_every > track.max_gap_frames:
        raise ConfigError(f"{origin}: {scope}track.detect_every ({track.detect_every}) is above "
                          f"{scope}track.max_gap_frames ({track.max_gap_frames}): every frame between detections "
                          "would be blurred whole")
    plates = config.detect.plates
    if 0 < plates.photo_tile_scale < 1:
        raise ConfigError(f"{origin}: {scope}detect.plates.photo_tile_scale ({plates.photo_tile_scale}) must be 0 "
                          "(off) or at least 1: tiles of a shrunk photo show plates smaller than the whole-photo "
                          "pass does")
    _check_masks(config.redact.masks, origin, scope)
    _check_parking(config.parking, origin, scope)
    _check_timezone(config.stamp.timezone, origin, scope)
    if plates.road_top >= plates.road_bottom:
        raise ConfigError(f"{origin}: {scope}detect.plates.road_top ({plates.road_top}) must be above "
                          f"{scope}detect.plates.road_bottom ({plates.road_bottom})")


def _check_masks(masks: list[PrivacyMask], origin: str, scope: str = "") -> None:
    for i, mask in enumerate(masks):
        if not mask.points:
            raise ConfigError(f"{origin}: {scope}redact.masks[{i}].points: a mask needs its polygon's corners")
        if polygon_area(mask.points) <= 0.0:
            raise ConfigError(f"{origin}: {scope}redact.masks[{i}].points enclose no area (all on one line): "
                              "list the polygon's corners in order")


def _check_parking(parking: ParkingConfig, origin: str, scope: str = "") -> None:
    if not parking.enabled:
        return
    key = f"{origin}: {scope}parking"
    if parking.ignition == "gpio" and not parking.gpio_line:
        raise ConfigError(f"{key}.ignition is gpio but {scope}parking.gpio_line is empty: name the line, e.g. "
                          "gpiochip0:27")
    if parking.ignition == "voltage" and not parking.voltage_path:
        raise ConfigError(f"{key}.ignition is voltage but {scope}parking.voltage_path is empty: name the sysfs "
                          "file with the supply voltage")
    if parking.battery_stop_volts >= parking.ignition_on_volts:
        raise ConfigError(f"{key}.battery_stop_volts ({parking.battery_stop_volts}) must be below "
                          f"{scope}parking.ignition_on_volts ({parking.ignition_on_volts})")


def _check_timezone(name: str, origin: str, scope: str = "") -> None:
    if not name:
        return
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{origin}: {scope}stamp.timezone: unknown time zone {name!r} (an IANA name such as "
                          "Europe/Berlin)") from None


def _check_upload(upload: UploadConfig, origin: str) -> None:
    if upload.enabled and ":" not in upload.remote:
        raise ConfigError(f"{origin}: upload.enabled is true but upload.remote ({upload.remote!r}) is not an rclone "
                          "remote and folder such as nas:dashcam")
    if upload.when == "wifi" and not upload.wifi_ssid:
        raise ConfigError(f"{origin}: upload.when is wifi but upload.wifi_ssid is empty: name the network")
    if not re.fullmatch(r"off|\d+(\.\d+)?[BKMGbkmg]?", upload.bandwidth):
        raise ConfigError(f"{origin}: upload.bandwidth {upload.bandwidth!r} is not a rate such as 500K, 2M or off")


def _build(cls: type, data: Any, origin: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        if key in RENAMED:
            raise ConfigError(f"{origin}: {key} was replaced by {RENAMED[key]}")
        raise ConfigError(f"{origin}: unknown key '{key}' (known: {', '.join(fields)})")
    values = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        hint = hints[name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, origin, prefix=f"{key}.")
        else:
            values[name] = _check_value(value, hint, fields[name].metadata, origin, key)
    return cls(**values)


def _check_value(value: Any, hint: Any, rules: Any, origin: str, key: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{origin}: {key}: expected {expected}, got {value!r}")

    if hint is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("a whole number")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float
            raise fail("a finite number") from None
        if not math.isfinite(value):  # NaN compares false with every bound: it must never reach them
            raise fail("a finite number")
    elif typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if value is False and "off" in allowed:
            value = "off"  # YAML 1.1 reads an unquoted `off` as false
        if value not in allowed:
            raise fail("one of " + ", ".join(map(str, allowed)))
    elif hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key.endswith("device"):
            value = str(value)  # a V4L2 index such as 0 is natural to write unquoted
        if not isinstance(value, str):
            raise fail("a string")
    elif typing.get_origin(hint) is list:
        (item_type,) = typing.get_args(hint)
        if isinstance(item_type, type) and dataclasses.is_dataclass(item_type):
            if not isinstance(value, list):
                raise fail("a list")
            return [_build(item_type, item, origin, prefix=f"{key}[{i}].") for i, item in enumerate(value)]
        if typing.get_origin(item_type) is tuple:
            return _points(value, rules, fail)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of strings")
        if "choices" in rules:
            if len(value) < rules.get("min_items", 0) or len(set(value)) != len(value):
                raise fail(f"a list of at least {rules.get('min_items', 0)} different names")
            unknown = [v for v in value if v not in rules["choices"]]
            if unknown:
                raise fail("names from " + ", ".join(map(str, rules["choices"])))
            return value
    if "choices" in rules and value not in rules["choices"]:
        raise fail("one of " + ", ".join(map(str, rules["choices"])))
    if "min" in rules and value < rules["min"]:
        raise fail(f"at least {rules['min']}")
    if "max" in rules and value > rules["max"]:
        raise fail(f"at most {rules['max']}")
    return value


def _points(value: Any, rules: Any, fail: Callable[[str], ConfigError]) -> list[tuple[float, float]]:
    """A polygon: a list of at least `min_items` [x, y] pairs of finite numbers within the rules' bounds."""
    low, high = rules["min"], rules["max"]
    expected = f"a list of at least {rules['min_items']} [x, y] points, each from {low} to {high}"
    if not isinstance(value, list) or len(value) < rules["min_items"]:
        raise fail(expected)
    points = []
    for point in value:
        if not (isinstance(point, list) and len(point) == 2
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in point)):
            raise fail(expected)
        x, y = (float(c) for c in point)
        if not all(math.isfinite(c) and low <= c <= high for c in (x, y)):
            raise fail(expected)
        points.append((x, y))
    return points


def polygon_area(points: list[tuple[float, float]]) -> float:
    """The area a polygon encloses (shoelace formula), in the units of its points."""
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]))) / 2


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def describe_defaults() -> str:
    """The default config as commented YAML, for `dashcam config --defaults`."""
    return "\n".join(_describe(Config(), indent=0))


def _plain(value: Any) -> Any:
    """Dataclasses inside lists as plain dicts, for YAML."""
    if isinstance(value, list):
        return [dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v for v in value]
    return value


def _describe(obj: Any, indent: int) -> list[str]:
    lines = []
    pad = "  " * indent
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        lines.append(f"{pad}# {f.metadata.get('help', '')}")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:")
            lines.extend(_describe(value, indent + 1))
        else:
            dumped = yaml.safe_dump({f.name: _plain(value)}, default_flow_style=True, width=1000).strip()[1:-1]
            lines.append(f"{pad}{dumped}")
    return lines
