"""scripts/finetune_plates.py: the two folds split whole photos, cover every plate once, and label them right."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from conftest import load_script


def _dataset(folder: Path, photos: int) -> dict:
    images, annotations = [], []
    for index in range(photos):
        name = f"photo{index:02d}.jpg"
        cv2.imwrite(str(folder / name), np.full((50, 100, 3), index, np.uint8))
        images.append({"id": index, "file_name": name, "width": 100, "height": 50})
        for plate in range(index % 3):  # 0, 1 or 2 plates a photo
            annotations.append({"id": len(annotations), "image_id": index, "category_id": 1,
                                "bbox": [10 + 30 * plate, 20, 20, 10]})
    coco = {"categories": [{"id": 1, "name": "0"}], "images": images, "annotations": annotations}
    (folder / "_annotations.coco.json").write_text(json.dumps(coco))
    return coco


def test_folds_split_whole_photos_cover_every_plate_once_and_write_normalised_labels(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    coco = _dataset(data, 11)
    script = load_script("finetune_plates")
    script.do_split(data, tmp_path / "cv", seed=0)

    bench = {fold: json.loads((tmp_path / "cv" / f"bench-{fold}" / "_annotations.coco.json").read_text())
             for fold in ("A", "B")}
    names = {fold: {image["file_name"] for image in bench[fold]["images"]} for fold in bench}
    assert not names["A"] & names["B"] and len(names["A"] | names["B"]) == 11
    assert {len(names["A"]), len(names["B"])} == {5, 6}
    for fold in bench:  # a fold's JSON holds its own photos' plates, and all of them
        ids = {image["id"] for image in bench[fold]["images"]}
        assert all(a["image_id"] in ids for a in bench[fold]["annotations"])
        assert len(bench[fold]["annotations"]) == sum(1 for a in coco["annotations"] if a["image_id"] in ids)
        assert {p.name for p in (tmp_path / "cv" / f"bench-{fold}").glob("*.jpg")} == names[fold]
    # photo05 has 2 plates: x 10-30 and 40-60, y 20-30 on a 100x50 photo
    fold = "A" if "photo05.jpg" in names["A"] else "B"
    label = (tmp_path / "cv" / f"yolo-{fold}" / "labels" / "photo05.txt").read_text().split("\n")
    assert label[:2] == ["0 0.200000 0.500000 0.200000 0.200000", "0 0.500000 0.500000 0.200000 0.200000"]
    assert (tmp_path / "cv" / f"yolo-{fold}" / "images" / "photo05.jpg").resolve() == data / "photo05.jpg"

    again = script.split(coco, seed=0)
    assert {image["file_name"] for image in again["A"]} == names["A"]
