"""Image files: reading one image safely, and a folder of images played as a camera.

A folder has no clock of its own: image n is at n / fps on its timeline
(`Frame.t_media_ns`), however fast the folder is processed.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.camera.opencv import stamp
from edge.errors import SourceError
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 image, or SourceError naming the file."""
    if not path.is_file():
        raise SourceError(f"input not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot decode image {path}: corrupt or not an image")
    return image


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))


class ImageFolderSource:
    """Each image in name order is one frame; sizes are matched to the first image."""

    def __init__(self, folder: Path, fps: float) -> None:
        if not folder.is_dir():
            raise SourceError(f"image folder not found: {folder}")
        self._paths = list_images(folder)
        if not self._paths:
            raise SourceError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        first = read_image(self._paths[0])
        self.height, self.width = first.shape[:2]
        self.fps = fps
        self.name = folder.name
        self._next = 0

    def read(self) -> Frame | None:
        while self._next < len(self._paths):
            path = self._paths[self._next]
            index = self._next
            self._next += 1
            try:
                image = read_image(path)
            except SourceError as exc:
                log.warning("skipping %s", exc)
                continue
            if image.shape[:2] != (self.height, self.width):
                image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
            frame = stamp(image, index)
            frame.t_media_ns = round(index * 1e9 / self.fps)  # a skipped image leaves its gap in time
            return frame
        return None

    def close(self) -> None:
        pass
