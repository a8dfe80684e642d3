"""scripts/make_ir_photos.py: grey and IR-like copies of an annotated photo set, labels untouched, deterministic."""
from __future__ import annotations

import cv2
import numpy as np

from conftest import load_script

make_ir_photos = load_script("make_ir_photos")


def _photo_set(root):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        photo = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        photo[:, :, 2] = 220  # a red cast: IR weights red most
        cv2.imwrite(str(root / "images" / f"{name}.png"), photo)
        (root / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.3\n")
    (root / "data.yaml").write_text("names: [face, plate]\n")
    return root


def test_ir_copies_are_grey_deterministic_and_keep_the_labels(tmp_path):
    source = _photo_set(tmp_path / "set")
    for out in ("ir1", "ir2"):
        assert make_ir_photos.main(["--input", str(source), "--out", str(tmp_path / out), "--mode", "ir",
                                    "--seed", "7"]) == 0
    first = cv2.imread(str(tmp_path / "ir1" / "images" / "a.png"))
    assert first.shape == (48, 64, 3) and (first[:, :, 0] == first[:, :, 2]).all()  # grey in three channels
    assert (first == cv2.imread(str(tmp_path / "ir2" / "images" / "a.png"))).all()
    assert (tmp_path / "ir1" / "labels" / "b.txt").read_text() == "0 0.5 0.5 0.2 0.3\n"
    assert (tmp_path / "ir1" / "data.yaml").is_file()


def test_the_ir_look_falls_off_from_the_centre_and_grey_is_plain_luminance():
    flat = np.full((90, 160, 3), 200, np.uint8)
    ir = make_ir_photos.to_ir(flat, np.random.default_rng(0))
    assert ir[45, 80] > ir[0, 0] + 40  # one LED at the centre
    assert (make_ir_photos.to_grey(flat) == 200).all()
