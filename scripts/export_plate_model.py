"""Reproduce models/plate_yolov8n_safelicensing_640.onnx from its upstream source.

The plate detector's weights are `best.pt` in the PyPI wheel safelicensing 1.0.3 (a
YOLOv8n fine-tuned for licence plates; weights derived from Ultralytics YOLOv8, hence
AGPL-3.0). This script unpacks the wheel, exports the weights with Ultralytics to ONNX
(opset 12, 640x640, simplified), and compares the result with the vendored file on
random and real inputs. ONNX bytes differ between exporter versions, so equivalence
is checked numerically rather than by sha256.

Needs the `train` extra (not a runtime dependency). Name torch in the same command, or
the resolver replaces the CPU build with the newest CUDA build (several GB):
    pip install torch==2.13.0 '.[train]'
    pip download --no-deps -d /tmp/wheels safelicensing==1.0.3
    python scripts/export_plate_model.py --output /tmp/plate.onnx \
        --wheel /tmp/wheels/safelicensing-1.0.3-py3-none-any.whl
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VENDORED = REPO / "models" / "plate_yolov8n_safelicensing_640.onnx"
WEIGHTS_IN_WHEEL = "safelicensing/best.pt"


def extract_weights(wheel: Path, workdir: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        target = workdir / "best.pt"
        with archive.open(WEIGHTS_IN_WHEEL) as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)
    return target


def export(weights: Path) -> Path:
    from ultralytics import YOLO  # imported here: ultralytics is never needed at run time

    return Path(YOLO(str(weights)).export(format="onnx", imgsz=640, opset=12, simplify=True, dynamic=False))


def max_difference(first: Path, second: Path) -> float:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (first, second)]
    worst = 0.0
    for _ in range(3):
        blob = rng.random((1, 3, 640, 640), dtype=np.float32)
        outputs = [s.run(None, {s.get_inputs()[0].name: blob})[0] for s in sessions]
        worst = max(worst, float(np.abs(outputs[0] - outputs[1]).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help="safelicensing-1.0.3 wheel file")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        weights = extract_weights(args.wheel, Path(workdir))
        print(f"best.pt sha256 {hashlib.sha256(weights.read_bytes()).hexdigest()}")
        shutil.copy(export(weights), args.output)
    print(f"exported {args.output} sha256 {hashlib.sha256(args.output.read_bytes()).hexdigest()}")
    print(f"max |difference| vs vendored {VENDORED.name}: {max_difference(args.output, VENDORED):.2e}")


if __name__ == "__main__":
    main()
