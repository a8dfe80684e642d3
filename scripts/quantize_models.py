"""Static int8 (QDQ) quantization of the detectors, and the fp32-vs-int8 measurement that decides which to keep.

This script owns the int8 model files `models/*.int8.onnx`: how they are calibrated (which
development frames, preprocessed exactly as the project feeds each model), which nodes stay
in float, and the numbers behind keeping them (speed at 1 and 2 threads, agreement with fp32).
The files it writes take 640x640 only; `scripts/free_input_size.py` then frees their input size
(models/README.md gives the sha256 of both steps). Measured on the freed files, at 640x640, the
numbers are the same: their outputs there are identical.

    PYTHONPATH=. python scripts/quantize_models.py [--out models] [--only yunet_n_dynamic ...]
    PYTHONPATH=. python scripts/quantize_models.py --measure int8-measure.json [--no-quantize]
    PYTHONPATH=. python scripts/quantize_models.py --only plate_yolov8n_safelicensing_640 --source OTHER.onnx
        (another fp32 file of the same model, e.g. one from scripts/finetune_plates.py)

(PYTHONPATH=. so that this checkout's `edge` is imported, not another editable install's.)

Calibration and evaluation images come from ../shared/data (plates-openimages-valid and
faces-roboflow-sample), split with a fixed seed; calibration adds frames of the committed
sample clip, and the photos that clip is made of are kept out of the evaluation half.
Agreement is int8 against fp32 (not against ground truth): the share of fp32 boxes scoring
>= 0.3 that an int8 box (above the project's threshold, same label) overlaps with IoU >= 0.5.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np
import onnx
from onnx import version_converter
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edge.camera import SAMPLE_VIDEO
from edge.detect.boxes import Letterbox, iou_matrix, letterbox_blob, nms, resize_for_stride
from edge.detect.coco import decode_yolov5
from edge.detect.session import create_session
from edge.detect.yolo import decode_yolov8
from edge.detect.yolo5face import decode_yolo5face
from edge.detect.yunet import decode_yunet

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
ATTRIBUTION = SAMPLE_VIDEO.parent / "ATTRIBUTION.md"

REF_SCORE = 0.3     # fp32 boxes at or above this are the ones int8 must reproduce
MATCH_IOU = 0.5
DASHCAM_W, DASHCAM_H = 1280, 720
QDQ_OPSET = 13

# One input blob for the model plus whatever its decoder needs to map boxes back to the image.
Prepared = tuple[np.ndarray, object]
Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # xyxy (source px), score, label


# ---------------------------------------------------------------- preprocessing (as the project feeds each model)

def letterbox_rgb(image_bgr: np.ndarray, size: int = 640) -> Prepared:
    """The YOLO-family feed of edge/detect (plate, COCO, YOLO5Face): 640 letterbox, RGB, /255, NCHW."""
    return letterbox_blob(image_bgr, size)


def stride_bgr(image_bgr: np.ndarray, long_side: int = 1280) -> Prepared:
    """edge/detect/face.py's feed for YuNet: long side at most `long_side`, zero-padded to /32, BGR 0-255."""
    padded, scale = resize_for_stride(image_bgr, long_side, stride=32)
    return padded.transpose(2, 0, 1)[None].astype(np.float32), (scale, padded.shape[0], padded.shape[1])


def as_dashcam_frame(image_bgr: np.ndarray) -> np.ndarray:
    """A photo cropped to 16:9 and scaled to 1280x720, so YuNet sees the 1280x736 input a dashcam frame gives."""
    height, width = image_bgr.shape[:2]
    crop_h = min(height, round(width * DASHCAM_H / DASHCAM_W))
    crop_w = min(width, round(crop_h * DASHCAM_W / DASHCAM_H))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return cv2.resize(image_bgr[top:top + crop_h, left:left + crop_w], (DASHCAM_W, DASHCAM_H),
                      interpolation=cv2.INTER_LINEAR)


# ---------------------------------------------------------------- decoders (threshold, NMS, back to source px)

def decode_plate(outputs: list[np.ndarray], meta: Letterbox) -> Boxes:
    xyxy, score = decode_yolov8(outputs[0], 0.1)
    keep = nms(xyxy, score, 0.5)
    return meta.to_source(xyxy[keep]), score[keep], np.zeros(len(keep), np.int64)


COCO_KEPT = np.array([0, 1, 2, 3, 5, 7])  # person, bicycle, car, motorcycle, bus, truck


def decode_coco(outputs: list[np.ndarray], meta: Letterbox) -> Boxes:
    """YOLOv5 [1,25200,85] (decoded cx,cy,w,h, obj, sigmoid class probs): persons and vehicles >= 0.25."""
    xyxy, score, label = decode_yolov5(outputs[0], tuple(COCO_KEPT.tolist()), 0.25)
    # Class-aware NMS: shift each class far apart so boxes of different classes never suppress.
    kept = nms(xyxy + (label * 4096.0)[:, None].astype(np.float32), score, 0.45)
    return meta.to_source(xyxy[kept]), score[kept], label[kept]


def decode_yolov5face(outputs: list[np.ndarray], meta: Letterbox) -> Boxes:
    """Raw stride_8/16/32 heads [1,3,H,W,16] (models/README.md): faces scoring obj*cls >= 0.3."""
    xyxy, score = decode_yolo5face({f"stride_{s}": raw for raw, s in zip(outputs, (8, 16, 32))}, 0.3)
    keep = nms(xyxy, score, 0.4)
    return meta.to_source(xyxy[keep]), score[keep], np.zeros(len(keep), np.int64)


YUNET_OUTPUTS = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in (8, 16, 32)]


def decode_yunet_outputs(outputs: list[np.ndarray], meta: tuple[float, int, int]) -> Boxes:
    scale, height, width = meta
    xyxy, score = decode_yunet(dict(zip(YUNET_OUTPUTS, outputs)), height, width, 0.3)
    keep = nms(xyxy, score, 0.4)
    return xyxy[keep] / scale, score[keep], np.zeros(len(keep), np.int64)


# ---------------------------------------------------------------- what each model is and how it is quantized

@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: Path
    prepare: Callable[[np.ndarray], Prepared]
    decode: Callable[[list[np.ndarray], object], Boxes]
    method: str = "minmax"
    # "tail": keep the decode tail in float (everything between the last feature convs and the
    # outputs); "head": also the last convs; "none": quantize every node that can be.
    exclude: str = "tail"
    tail_prefixes: tuple[str, ...] = ()
    symbolic_shapes: bool = True  # symbolic shape inference cannot finish YuNet's dynamic H,W (onnx's own can)
    calib_frame: Callable[[np.ndarray], np.ndarray] = lambda image: image
    # Feeds the agreement is measured with (default: `prepare` alone, as "project_feed").
    eval_variants: dict[str, Callable[[np.ndarray], Prepared]] = field(default_factory=dict)


MODELS = {
    spec.name: spec for spec in (
        ModelSpec("plate_yolov8n_safelicensing_640", SHARED / "models" / "plate_yolov8n_safelicensing_640.onnx",
                  letterbox_rgb, decode_plate, tail_prefixes=("/model.22/dfl/",)),
        # Percentile (99.999) kept 252 of 258 fp32 boxes where MinMax kept 247: outliers widen MinMax ranges.
        ModelSpec("yolov5n_v6.1_coco", SHARED / "models" / "yolov5n_v6.1_coco.onnx", letterbox_rgb, decode_coco,
                  method="percentile"),
        ModelSpec("yolov5face_n05", SHARED / "models" / "yolov5face_n05.onnx", letterbox_rgb, decode_yolov5face,
                  method="percentile"),
        ModelSpec("yunet_n_dynamic", REPO / "models" / "yunet_n_dynamic.onnx", stride_bgr, decode_yunet_outputs,
                  calib_frame=as_dashcam_frame, symbolic_shapes=False,
                  # The calibrated size, then the photos' own sizes and a smaller one: H,W stay dynamic.
                  eval_variants={"dashcam_1280x736": lambda image: stride_bgr(as_dashcam_frame(image)),
                                 "native_long1280": stride_bgr,
                                 "long640": lambda image: stride_bgr(image, 640)}),
    )
}
METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}
ACTIVATIONS = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}


# ---------------------------------------------------------------- images: a fixed calibration / held-out split

def list_jpgs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def sample_clip_sources() -> set[str]:
    """Photo names the committed sample clip is built from (they must not be held out: the clip calibrates)."""
    return set(re.findall(r"`([^`/]+\.jpg)`", ATTRIBUTION.read_text()))


def split_images(calib_per_set: int, eval_per_set: int, seed: int) -> tuple[list[Path], list[Path]]:
    rng = np.random.default_rng(seed)
    in_clip = sample_clip_sources()
    calib, held_out = [], []
    for folder in (DATA / "plates-openimages-valid", DATA / "faces-roboflow-sample" / "images"):
        listed = list_jpgs(folder)
        paths = [listed[i] for i in rng.permutation(len(listed))]
        calib += paths[:calib_per_set]
        held_out += [p for p in paths[calib_per_set:] if p.name not in in_clip][:eval_per_set]
    return calib, held_out


def sample_clip_frames(count: int) -> list[np.ndarray]:
    """`count` evenly spaced frames of the committed 1280x720 drive: real dashcam framing for calibration."""
    with av.open(str(SAMPLE_VIDEO)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    return [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]


class FrameReader(CalibrationDataReader):
    """Feeds preprocessed frames lazily; `set_range` lets onnxruntime calibrate in chunks (bounded memory)."""

    def __init__(self, input_name: str, frames: list[Callable[[], np.ndarray]],
                 prepare: Callable[[np.ndarray], Prepared]) -> None:
        self._input_name = input_name
        self._frames = frames
        self._prepare = prepare
        self._iter: Iterator[int] = iter(range(len(frames)))

    def __len__(self) -> int:
        return len(self._frames)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._iter = iter(range(start_index, min(end_index, len(self._frames))))

    def get_next(self) -> dict[str, np.ndarray] | None:
        index = next(self._iter, None)
        if index is None:
            return None
        blob, _meta = self._prepare(self._frames[index]())
        return {self._input_name: blob}


# ---------------------------------------------------------------- quantization

def decode_tail(model: onnx.ModelProto, prefixes: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Nodes between the last convs and the outputs (walking back from each output through non-Conv
    nodes, plus names under `prefixes`), and the convs where that walk stopped (the head convs).

    The tails mix box coordinates (hundreds of px) with scores (0-1) in one tensor, or hold
    the sigmoid/exp of the decode: one int8 scale there rounds scores to nothing.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    tail, heads, todo = set(), set(), [o.name for o in model.graph.output]
    while todo:
        node = producer.get(todo.pop())
        if node is None or node.name in tail or node.name in heads:
            continue
        if node.op_type == "Conv":
            heads.add(node.name)
            continue
        tail.add(node.name)
        todo += list(node.input)
    tail |= {node.name for node in model.graph.node if node.name.startswith(prefixes)}
    heads -= tail
    return sorted(tail), sorted(heads)


def excluded_nodes(model: onnx.ModelProto, spec: ModelSpec, level: str) -> list[str]:
    if level == "none":
        return []
    tail, heads = decode_tail(model, spec.tail_prefixes)
    return tail + heads if level == "head" else tail


def calibration_frames(spec: ModelSpec, calib: list[Path], clip: list[np.ndarray]) -> list[Callable[[], np.ndarray]]:
    loaders = [lambda path=path: spec.calib_frame(cv2.imread(str(path))) for path in calib]
    return loaders + [lambda frame=frame: frame for frame in clip]


def quantize(spec: ModelSpec, out_path: Path, frames: list[Callable[[], np.ndarray]], method: str,
             exclude: str, activation: str, cache_dir: Path | None) -> dict:
    """Pre-process (shape inference + ORT basic optimisation), calibrate, write the QDQ model."""
    out_path, cache_dir = out_path.resolve(), cache_dir.resolve() if cache_dir else None
    # onnxruntime's pre-processing leaves temporary files in the working directory: work in tmp.
    with tempfile.TemporaryDirectory(prefix="quant-") as tmp, contextlib.chdir(tmp):
        opset13, prepared = Path(tmp) / f"{spec.name}.opset13.onnx", Path(tmp) / f"{spec.name}.pre.onnx"
        # Per-channel weights need DequantizeLinear's `axis`, which exists from opset 13 on;
        # the vendored files are opset 11 and 12, and onnxruntime does not raise them itself.
        onnx.save(version_converter.convert_version(onnx.load(str(spec.source)), QDQ_OPSET), str(opset13))
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=not spec.symbolic_shapes)
        model = onnx.load(str(prepared))
        exclude_list = excluded_nodes(model, spec, exclude)
        input_name = model.graph.input[0].name
        reader = FrameReader(input_name, frames, spec.prepare)
        cache = cache_dir / f"{spec.name}.{method}.{len(frames)}.calib.json" if cache_dir else None
        started = time.perf_counter()
        quantize_static(
            str(prepared), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=ACTIVATIONS[activation], weight_type=QuantType.QInt8, calibrate_method=METHODS[method],
            nodes_to_exclude=exclude_list, calibration_cache_path=cache,
            # Chunks of 16 frames: onnxruntime otherwise keeps every intermediate tensor of every
            # frame in memory (tens of GB at 640x640 for ~150 frames).
            extra_options={"CalibStridedMinMax": 16} if len(frames) % 16 == 0 else {},
        )
        pre_ops = _op_counts(onnx.load(str(spec.source))), _op_counts(model)
    return {"method": method, "exclude": exclude, "activation": activation, "weights": "int8 per channel",
            "excluded_nodes": exclude_list, "calibration_frames": len(frames),
            "calibration_s": round(time.perf_counter() - started, 1),
            "pre_process_op_counts": {"before": pre_ops[0], "after": pre_ops[1]}}


def _op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- measurement

def time_interleaved(sessions: dict[str, ort.InferenceSession], feed: dict[str, np.ndarray], runs: int,
                     warmup: int = 3) -> dict[str, float]:
    """Median ms per run; the variants alternate run by run (and which goes first alternates) so
    load from other work on the shared cores falls on both alike."""
    names = list(sessions)
    for _ in range(warmup):
        for name in names:
            sessions[name].run(None, feed)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        for name in (names if i % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            sessions[name].run(None, feed)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def agreement(pairs: list[tuple[Boxes, Boxes]]) -> dict:
    """Recall of int8 boxes against fp32 boxes scoring >= REF_SCORE (greedy, best fp32 score first)."""
    reference = matched = extra = 0
    ious, score_diffs = [], []
    for (ref_xyxy, ref_score, ref_label), (q_xyxy, q_score, q_label) in pairs:
        strong = ref_score >= REF_SCORE
        ref_xyxy, ref_score, ref_label = ref_xyxy[strong], ref_score[strong], ref_label[strong]
        reference += len(ref_score)
        used = np.zeros(len(q_score), bool)
        iou = iou_matrix(ref_xyxy, q_xyxy) if len(ref_score) and len(q_score) else np.zeros((len(ref_score), 0))
        for r in np.argsort(-ref_score):
            candidates = np.where(~used & (q_label == ref_label[r]), iou[r], -1.0)
            if candidates.size and candidates.max() >= MATCH_IOU:
                q = int(candidates.argmax())
                used[q] = True
                matched += 1
                ious.append(float(iou[r, q]))
                score_diffs.append(float(q_score[q] - ref_score[r]))
        # int8 boxes >= REF_SCORE that match no fp32 box at all: what int8 adds.
        any_ref = iou.max(axis=0) >= MATCH_IOU if len(ref_score) else np.zeros(len(q_score), bool)
        extra += int(np.sum((q_score >= REF_SCORE) & ~used & ~any_ref))
    return {"fp32_boxes": reference, "matched": matched,
            "recall_vs_fp32": round(matched / reference, 4) if reference else None,
            "mean_iou": round(float(np.mean(ious)), 4) if ious else None,
            "mean_score_change": round(float(np.mean(score_diffs)), 4) if score_diffs else None,
            "int8_extra_boxes": extra}


def run_model(session: ort.InferenceSession, blob: np.ndarray) -> list[np.ndarray]:
    return session.run(None, {session.get_inputs()[0].name: blob})


def measure(spec: ModelSpec, fp32: Path, int8: Path, held_out: list[Path], runs: int) -> dict:
    result: dict = {"fp32": {"file": str(fp32), "bytes": fp32.stat().st_size, "sha256": sha256(fp32)},
                    "int8": {"file": str(int8), "bytes": int8.stat().st_size, "sha256": sha256(int8)}}
    speed_frame = sample_clip_frames(1)[0]
    blob, _meta = spec.prepare(speed_frame)
    result["speed_input_shape"] = list(blob.shape)
    for threads in (1, 2):
        sessions = {"fp32": create_session(fp32, ["CPUExecutionProvider"], threads),
                    "int8": create_session(int8, ["CPUExecutionProvider"], threads)}
        medians = time_interleaved(sessions, {sessions["fp32"].get_inputs()[0].name: blob}, runs)
        result[f"ms_threads{threads}"] = {**medians, "int8_over_fp32": round(medians["int8"] / medians["fp32"], 3)}
    sessions = {"fp32": create_session(fp32, ["CPUExecutionProvider"], 2),
                "int8": create_session(int8, ["CPUExecutionProvider"], 2)}
    for variant, prepare in (spec.eval_variants or {"project_feed": spec.prepare}).items():
        pairs, shapes = [], set()
        for path in held_out:
            blob, meta = prepare(cv2.imread(str(path)))
            shapes.add(tuple(blob.shape[2:]))
            pairs.append(tuple(spec.decode(run_model(sessions[kind], blob), meta) for kind in ("fp32", "int8")))
        result[f"agreement_{variant}"] = {**agreement(pairs), "images": len(held_out),
                                          "input_hw": sorted(list(s) for s in shapes)[:6]}
    return result


# ---------------------------------------------------------------- CLI

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "models", help="folder for the *.int8.onnx files")
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), help="these models only (default: all)")
    parser.add_argument("--method", choices=sorted(METHODS), help="calibration method for every model "
                        "(default: each model's own)")
    parser.add_argument("--exclude", choices=("none", "tail", "head"), help="nodes kept in float, for every "
                        "model (default: each model's own)")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="uint8",
                        help="activation type (weights are int8)")
    parser.add_argument("--calib-per-set", type=int, default=64, help="calibration photos from each data set")
    parser.add_argument("--clip-frames", type=int, default=16, help="sample-clip frames added to calibration")
    parser.add_argument("--eval-per-set", type=int, default=50, help="held-out photos from each data set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", type=Path, help="also measure fp32 vs int8 and write JSON here")
    parser.add_argument("--no-quantize", action="store_true", help="measure the int8 files already in --out")
    parser.add_argument("--runs", type=int, default=25, help="timed runs per model and thread count")
    parser.add_argument("--cache-dir", type=Path, help="reuse calibration ranges stored here (experiments)")
    parser.add_argument("--source", type=Path, help="quantize this fp32 file instead of the model's own (one "
                        "--only model; e.g. a fine-tuned plate model from scripts/finetune_plates.py)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.source and len(args.only or ()) != 1:
        raise SystemExit("--source needs exactly one model in --only")
    args.out.mkdir(parents=True, exist_ok=True)
    calib, held_out = split_images(args.calib_per_set, args.eval_per_set, args.seed)
    assert not set(calib) & set(held_out)
    clip = sample_clip_frames(args.clip_frames) if args.clip_frames else []
    report: dict = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "machine": platform.machine(),
                    "processor": _cpu_name(), "cpus": os.cpu_count(), "load_average_start": os.getloadavg(),
                    "seed": args.seed, "calibration_images": [p.name for p in calib],
                    "held_out_images": [p.name for p in held_out], "models": {}}
    for name in args.only or list(MODELS):
        spec = replace(MODELS[name], source=args.source) if args.source else MODELS[name]
        out_path = args.out / f"{name}.int8.onnx"
        entry: dict = {}
        if not args.no_quantize:
            entry["quantization"] = quantize(spec, out_path, calibration_frames(spec, calib, clip),
                                             args.method or spec.method, args.exclude or spec.exclude, args.activation,
                                             args.cache_dir)
            print(f"{sha256(out_path)}  {out_path}", flush=True)
        if args.measure:
            entry["measure"] = measure(spec, spec.source, out_path, held_out, args.runs)
            print(name, json.dumps({k: v for k, v in entry["measure"].items() if k not in ("fp32", "int8")}),
                  flush=True)
        report["models"][name] = entry
    if args.measure:
        report["load_average_end"] = os.getloadavg()
        args.measure.write_text(json.dumps(report, indent=1) + "\n")


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
