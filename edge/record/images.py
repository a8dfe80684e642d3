"""Writing one redacted still image atomically, in the format its name asks for."""
from __future__ import annotations

from pathlib import Path

import cv2

from edge.errors import StorageError
from edge.record.atomic import write_atomic
from edge.redact import RedactedFrame, require_redacted

_JPEG_QUALITY = 95


def write_image(path: Path, frame: RedactedFrame) -> Path:
    """Encode a sealed, read-only redacted frame and write it atomically; anything else is a TypeError."""
    require_redacted(frame, "write_image")
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(path.suffix.lower(), frame.image_bgr, params)
    if not ok:
        raise StorageError(f"cannot encode {path.name} as {path.suffix}")
    return write_atomic(path, encoded.tobytes())
