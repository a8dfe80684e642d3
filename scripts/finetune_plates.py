"""Cross-validated fine-tuning of the plate YOLOv8n: would more plate photos like the development set help?

This script owns one experiment: it splits the development plate photos
(`../shared/data/plates-openimages-valid`, COCO JSON) into two folds with a fixed seed,
fine-tunes the shipped plate weights on one fold and exports the result to ONNX, so that
`dashcam bench` can score it on the *other* fold, photos it was not tuned on. Scoring a
model on the photos it was trained on says nothing about privacy; a fold's numbers are
only ever read against the same fold's baseline.

    python scripts/finetune_plates.py split --out /tmp/plates-cv          # folds A and B
    python scripts/finetune_plates.py train --out /tmp/plates-cv --fold A  # trains on A, for B
    dashcam bench --input /tmp/plates-cv/bench-B --class-map 0=plate \
        --annotations /tmp/plates-cv/bench-B/_annotations.coco.json --config ...

Needs the `train` extra (ultralytics, torch) and the upstream weights
(`../shared/models/plate_yolov8n_safelicensing.pt`, AGPL-3.0). Training runs on the CPU
if no GPU is present. ultralytics is never imported at run time.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "plates-openimages-valid"
WEIGHTS = REPO.parent / "shared" / "models" / "plate_yolov8n_safelicensing.pt"
FOLDS = ("A", "B")


def split(coco: dict, seed: int) -> dict[str, list[dict]]:
    """Two folds of whole photos (a photo's plates never straddle folds), by a seeded shuffle of names."""
    images = sorted(coco["images"], key=lambda image: image["file_name"])
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    return dict(zip(FOLDS, ([images[i] for i in order[:half]], [images[i] for i in order[half:]])))


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.symlink(source, target)


def write_bench_fold(coco: dict, images: list[dict], data: Path, folder: Path) -> None:
    """A folder `dashcam bench` reads: the fold's photos (links) and a COCO JSON of just them."""
    ids = {image["id"] for image in images}
    subset = dict(coco, images=images, annotations=[a for a in coco["annotations"] if a["image_id"] in ids])
    for image in images:
        _link(data / image["file_name"], folder / image["file_name"])
    (folder / "_annotations.coco.json").write_text(json.dumps(subset))


def write_yolo_fold(coco: dict, images: list[dict], data: Path, folder: Path) -> int:
    """The fold as an Ultralytics dataset: images/ (links) and labels/ (class 0, normalised cx cy w h)."""
    by_image: dict[int, list[list[float]]] = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation["bbox"])
    boxes = 0
    for image in images:
        width, height = image["width"], image["height"]
        lines = [f"0 {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}"
                 for x, y, w, h in by_image.get(image["id"], [])]
        boxes += len(lines)
        _link(data / image["file_name"], folder / "images" / image["file_name"])
        label = folder / "labels" / Path(image["file_name"]).with_suffix(".txt").name
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("\n".join(lines) + ("\n" if lines else ""))
    return boxes


def do_split(data: Path, out: Path, seed: int) -> None:
    coco = json.loads((data / "_annotations.coco.json").read_text())
    folds = split(coco, seed)
    for name, images in folds.items():
        write_bench_fold(coco, images, data, out / f"bench-{name}")
        boxes = write_yolo_fold(coco, images, data, out / f"yolo-{name}")
        (out / f"yolo-{name}.yaml").write_text(
            # val is the training fold itself: ultralytics' closing report, never a test.
            f"path: {out / f'yolo-{name}'}\ntrain: images\nval: images\nnames:\n  0: License_Plate\n")
        print(f"fold {name}: {len(images)} photos, {boxes} plates")
    (out / "folds.json").write_text(json.dumps(
        {"seed": seed, **{name: [image["file_name"] for image in images] for name, images in folds.items()}},
        indent=1))


def do_train(out: Path, fold: str, epochs: int, imgsz: int, freeze: int, lr0: float, batch: int,
             device: str | None) -> Path:
    from ultralytics import YOLO  # imported here: ultralytics is never needed at run time

    model = YOLO(str(WEIGHTS))
    name = f"train-{fold}-e{epochs}-s{imgsz}-f{freeze}"
    # val=False: the other fold is the test, and choosing a checkpoint on it would tune on it.
    model.train(data=str(out / f"yolo-{fold}.yaml"), epochs=epochs, imgsz=imgsz, batch=batch, freeze=freeze,
                optimizer="AdamW", lr0=lr0, warmup_epochs=1, val=False, plots=False, workers=2,
                project=str(out), name=name, exist_ok=True, seed=0, deterministic=True, device=device)
    last = out / name / "weights" / "last.pt"
    exported = Path(YOLO(str(last)).export(format="onnx", imgsz=640, opset=12, simplify=True, dynamic=False))
    print(f"exported {exported}")
    return exported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("split", "train"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA, help="the plate photos and their COCO JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fold", choices=FOLDS, default="A", help="train on this fold (the other one is the test)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--freeze", type=int, default=0, help="freeze the first N layers (10: the backbone)")
    parser.add_argument("--lr0", type=float, default=0.0005)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", help="ultralytics' device: cpu, 0 (the first GPU); default: a GPU if any")
    args = parser.parse_args()
    if args.command == "split":
        do_split(args.data.resolve(), args.out, args.seed)
    else:
        do_train(args.out, args.fold, args.epochs, args.imgsz, args.freeze, args.lr0, args.batch, args.device)


if __name__ == "__main__":
    main()
