"""Make grey or infrared-like copies of an annotated YOLO-txt photo set.

A rideshare cabin camera often films at night in near infrared: a grey, high-contrast
picture lit by an IR LED next to the lens, in which skin looks pale and bright, eyes dark,
and the light falls off strongly away from the centre. This dev tool makes such photos
from an ordinary annotated colour set, so that ``dashcam bench`` can tell whether the
face detectors (trained on colour photos) keep their recall on them.

It owns the folder given by ``--out`` and writes, from ``--input`` (a folder with
``images/`` and ``labels/``, e.g. ``../shared/data/faces-roboflow-sample``):

* ``images/``  every photo converted (same relative path and name, JPEG quality 95)
* ``labels/``  the YOLO txt files copied unchanged (the geometry does not change)
* the set's own class-name files (``data.yaml``, ``classes.txt``), copied unchanged

Modes:

* ``grey``  plain luminance (BT.601), written as a 3-channel BGR image
* ``ir``    a channel mix weighted towards red (skin and fabrics reflect near IR
  strongly: 0.6 R + 0.3 G + 0.1 B), a curve that brightens skin and crushes the darks,
  a radial falloff of the illumination (one LED at the centre), and mild Gaussian
  sensor noise

``--clahe`` also equalises the result with CLAHE: a preprocessing the product does not
do; measuring it here says whether it would be worth the code change.

Output is deterministic: the noise of each photo is seeded by ``--seed`` and its path.
Usage (from the repository root)::

    python scripts/make_ir_photos.py --input ../shared/data/faces-roboflow-sample \\
        --out /tmp/ir/ir --mode ir --seed 7

Not part of the ``edge`` package and never imported by it.
"""

from __future__ import annotations

import argparse
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
NAME_FILES = ("data.yaml", "classes.txt")
IR_MIX_BGR = np.array([0.1, 0.3, 0.6], dtype=np.float32)  # B, G, R weights
IR_GAMMA = 0.7  # < 1 lifts mid-tones: skin turns pale
IR_BLACK = 0.12  # everything below this share of full scale is crushed to black
IR_CONTRAST = 1.4  # slope of the S-curve around mid-grey
IR_FALLOFF = 0.55  # brightness lost in the corners (quadratic in the distance)
IR_NOISE = 0.02  # sensor noise, standard deviation as a share of full scale


def to_grey(bgr: np.ndarray) -> np.ndarray:
    """Plain luminance, one channel, uint8."""
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def to_ir(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An IR-like look, one channel, uint8."""
    x = bgr.astype(np.float32) @ IR_MIX_BGR / 255.0
    x = x**IR_GAMMA
    x = np.clip((x - IR_BLACK) / (1.0 - IR_BLACK), 0.0, 1.0)
    x = np.clip(0.5 + (x - 0.5) * IR_CONTRAST, 0.0, 1.0)
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    x *= 1.0 - IR_FALLOFF * r2 / 2.0  # r2 is 2 in the corners
    x += rng.normal(0.0, IR_NOISE, x.shape).astype(np.float32)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def convert(bgr: np.ndarray, mode: str, clahe: bool, rng: np.random.Generator) -> np.ndarray:
    """One photo in the given mode, as a 3-channel BGR image."""
    grey = to_grey(bgr) if mode == "grey" else to_ir(bgr, rng)
    if clahe:
        grey = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="set with images/ and labels/")
    parser.add_argument("--out", type=Path, required=True, help="new set written here")
    parser.add_argument("--mode", choices=["grey", "ir"], required=True)
    parser.add_argument("--clahe", action="store_true", help="also equalise with CLAHE (clip 2, 8x8 tiles)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (ir)")
    args = parser.parse_args(argv)

    images, labels = args.input / "images", args.input / "labels"
    if not images.is_dir() or not labels.is_dir():
        parser.error(f"{args.input} needs images/ and labels/ folders")
    shutil.copytree(labels, args.out / "labels", dirs_exist_ok=True)
    for name in NAME_FILES:
        if (args.input / name).is_file():
            shutil.copy2(args.input / name, args.out / name)

    count = 0
    for src in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = src.relative_to(images)
        bgr = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if bgr is None:
            parser.error(f"cannot read {src}")
        rng = np.random.default_rng([args.seed, zlib.crc32(rel.as_posix().encode())])
        dst = args.out / "images" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(dst), convert(bgr, args.mode, args.clahe, rng), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            parser.error(f"cannot write {dst}")
        count += 1
    print(f"{count} photos ({args.mode}{' + CLAHE' if args.clahe else ''}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
