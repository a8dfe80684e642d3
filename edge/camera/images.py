"""Image files: reading one image safely, and a folder of images played as a camera.

A folder has no clock of its own: image n is at n / fps on its timeline
(`Frame.t_media_ns`), however fast the folder is processed. Before decoding, the size
in the file's header (read by Pillow, which decodes nothing until asked) is checked
against `source.max_pixels`: a few hundred kB of PNG can declare gigabytes of pixels.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from edge.camera.opencv import check_pixels, stamp
from edge.config import DEFAULT_MAX_PIXELS
from edge.errors import SourceError
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def check_header(path: Path, max_pixels: int) -> None:
    """Refuse an image whose header (read by Pillow, which decodes nothing yet) declares over `max_pixels`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        # Pillow's own refusal starts above any limit dashcam accepts (config.DECOMPRESSION_BOMB_PIXELS).
        refused = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise SourceError(f"{path}: its header declares more than {refused / 1e6:.0f} million "
                          f"pixels a frame, more than source.max_pixels ({max_pixels / 1e6:g} million); "
                          "refused before decoding") from None
    except (OSError, ValueError, SyntaxError) as exc:  # UnidentifiedImageError is an OSError
        raise SourceError(f"cannot decode image {path}: corrupt or not an image ({exc})") from None
    check_pixels(path, width, height, max_pixels)


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A BGR uint8 image, or SourceError naming the file; its header is checked against `max_pixels` first."""
    if not path.is_file():
        raise SourceError(f"input not found: {path}")
    check_header(path, max_pixels)
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot decode image {path}: corrupt or not an image")
    return image


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))


class ImageFolderSource:
    """Each image in name order is one frame; sizes are matched to the first image."""

    def __init__(self, folder: Path, fps: float, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if not folder.is_dir():
            raise SourceError(f"image folder not found: {folder}")
        self._paths = list_images(folder)
        if not self._paths:
            raise SourceError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        self._max_pixels = max_pixels
        first = read_image(self._paths[0], max_pixels)
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
                image = read_image(path, self._max_pixels)
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
