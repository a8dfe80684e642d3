"""Redaction: the only place a `RedactedFrame` is made. It fails closed.

Given a frame and the detector verdict, hide every detected region (ellipses for
faces, rectangles for plates, each grown by its class's mask scale) and the config's fixed privacy
masks (polygons hidden in every frame, whatever the detectors found), then draw the optional
overlay (the stamp) on the hidden image. If detection failed, or hiding
a region raises, the whole frame is blurred (or dropped, if configured) and that is
recorded in the frame's counts. Pixels are changed in place, so the raw image does
not outlive this call inside the frame either, and the sealed image is made read-only.

`RedactedFrame` lives here, not in `edge.types`, so that its seal never leaves this module:
sinks that store or send pixels call `require_redacted()` and take nothing else.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import typing
import weakref
from typing import NamedTuple, NoReturn, Protocol

import cv2
import numpy as np

from edge.config import PrivacyMask, RedactConfig
from edge.geometry import scale_boxes
from edge.types import DetectionFailure, Detections, Frame, GpsFix, Label, RedactionCounts

log = logging.getLogger(__name__)

# Blur strength relative to the box: sigma is this share of the box's longer side.
# At 0.15 the characters of a plate (about half its height) smear into each other.
_SIGMA_PER_BOX_SIDE = 0.15
_MIN_SIGMA = 4.0
# Whole-frame blur when detection failed: coarse enough that no face or plate survives.
_SIGMA_PER_FRAME_SIDE = 1 / 30
_PIXELATE_BLOCKS = 8


class _Contents(NamedTuple):
    """What one `RedactedFrame` holds; immutable, and reachable only through this module's mapping."""

    image_bgr: np.ndarray
    frame_index: int  # not `index`: that is tuple's own method
    t_mono_ns: int
    t_utc: dt.datetime
    counts: RedactionCounts
    fix: GpsFix | None
    hidden: Detections  # boxes hidden, before mask growth
    t_media_ns: int | None  # the source's own clock, as on `Frame`


# The capability RedactedFrame's constructor demands. It never leaves this module.
_SEAL = object()
# Sealed frame -> its contents. Being a key here, not being of the type, is what makes a frame
# redacted: an instance made by `object.__new__` or by assigning `__class__` has no entry.
_SEALED: weakref.WeakKeyDictionary[RedactedFrame, _Contents] = weakref.WeakKeyDictionary()


def _contents(frame: RedactedFrame) -> _Contents:
    try:
        return _SEALED[frame]
    except KeyError:
        raise TypeError("this RedactedFrame was not sealed by edge.redact") from None


@typing.final
class RedactedFrame:
    """An image in which every detected region is hidden, or the whole image is.

    Sinks that store or send pixels (the encoder, the image writer) accept only this type, through
    `require_redacted()`; only `Redactor` makes one. It has no instance attributes: its fields are
    read-only properties over an entry in a module-private mapping, and `image_bgr` and the
    `hidden` arrays are read-only numpy arrays. Refused, with TypeError: construction without the
    module's seal, subclassing, copy, deepcopy, pickling, `dataclasses.replace` and `copy.replace`.
    Refused, with AttributeError: setting or deleting an attribute, `object.__setattr__` included
    (properties without setters, no `__dict__`). Equality is identity.

    This guards against mistakes, not against hostile code in the same process: such code can
    import `_SEAL` or `_SEALED`, patch this class, set `writeable = True` again on an image that
    owns its memory (numpy allows it; the sinks then refuse the frame, but the flag can be
    cleared again), write through `image_bgr.base` when the sealed image is a view, or simply
    call cv2.imwrite on a raw frame itself.
    """

    __slots__ = ("__weakref__",)

    def __init__(self, seal: object, contents: _Contents) -> None:
        if seal is not _SEAL:
            raise TypeError("RedactedFrame can only be created by edge.redact.Redactor")
        if self in _SEALED:
            raise TypeError("a RedactedFrame is sealed once")
        _SEALED[self] = contents

    def __init_subclass__(cls, **kwargs: object) -> NoReturn:
        raise TypeError("RedactedFrame cannot be subclassed: a subclass could carry raw pixels")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"RedactedFrame is read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"RedactedFrame is read-only: cannot delete {name!r}")

    def _refuse_copy(self, *args: object, **changes: object) -> NoReturn:
        raise TypeError("a RedactedFrame cannot be copied, pickled or replaced: only edge.redact makes one")

    # copy.copy, copy.deepcopy, pickle, and copy.replace (Python 3.13). dataclasses.replace already
    # refuses anything that is not a dataclass.
    __copy__ = __deepcopy__ = __reduce__ = __reduce_ex__ = __getstate__ = __replace__ = _refuse_copy

    def __repr__(self) -> str:
        contents = _SEALED.get(self)
        if contents is None:
            return "<RedactedFrame, not sealed>"
        return f"<RedactedFrame {contents.frame_index} t_mono_ns={contents.t_mono_ns} {contents.counts}>"

    @property
    def image_bgr(self) -> np.ndarray:
        """The redacted image, H x W x 3 uint8, read-only."""
        return _contents(self).image_bgr

    @property
    def index(self) -> int:
        return _contents(self).frame_index

    @property
    def t_mono_ns(self) -> int:
        return _contents(self).t_mono_ns

    @property
    def t_utc(self) -> dt.datetime:
        return _contents(self).t_utc

    @property
    def counts(self) -> RedactionCounts:
        return _contents(self).counts

    @property
    def fix(self) -> GpsFix | None:
        return _contents(self).fix

    @property
    def hidden(self) -> Detections:
        """The boxes hidden, before mask growth; its arrays are read-only copies."""
        return _contents(self).hidden

    @property
    def t_media_ns(self) -> int | None:
        """The source's own clock, as on `Frame`."""
        return _contents(self).t_media_ns

    @property
    def timeline_ns(self) -> int:
        """When the frame was taken, on the clock stored files keep (see `Frame.timeline_ns`)."""
        contents = _contents(self)
        return contents.t_mono_ns if contents.t_media_ns is None else contents.t_media_ns


def require_redacted(frame: object, sink: str) -> RedactedFrame:
    """`frame`, if this module sealed it and its image is still read-only; TypeError otherwise.

    Every sink that stores or sends pixels calls this before touching them. `sink` names the
    caller in the message.
    """
    if type(frame) is not RedactedFrame:
        raise TypeError(f"{sink} accepts RedactedFrame only, got {type(frame).__name__}")
    if _contents(frame).image_bgr.flags.writeable:
        raise TypeError(f"{sink} refuses a RedactedFrame whose image was made writable again")
    return frame


def _read_only_copy(detections: Detections) -> Detections:
    """A copy whose arrays refuse writes; the caller's (the tracker's state) stay writable."""
    frozen = Detections(**{f.name: np.array(getattr(detections, f.name)) for f in dataclasses.fields(detections)})
    for f in dataclasses.fields(frozen):
        getattr(frozen, f.name).flags.writeable = False
    return frozen


def grow_boxes(xyxy: np.ndarray, scale: float | np.ndarray, width: int | None, height: int | None) -> np.ndarray:
    """Scale boxes about their centres, round outwards to whole pixels and clip to the frame.

    `scale` is one factor for all boxes or one per box; `width`/`height` None leaves them unclipped.
    """
    scaled = scale_boxes(xyxy, scale)
    grown = np.concatenate([np.floor(scaled[:, :2]), np.ceil(scaled[:, 2:])], axis=1)
    if width is not None and height is not None:
        grown[:, [0, 2]] = np.clip(grown[:, [0, 2]], 0, width)
        grown[:, [1, 3]] = np.clip(grown[:, [1, 3]], 0, height)
    return grown.astype(np.int64)


def strong_blur(region: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of any strength at a bounded cost: blur a downscaled copy, scale back up."""
    height, width = region.shape[:2]
    factor = max(1.0, sigma / 2.0)
    small_w, small_h = max(1, round(width / factor)), max(1, round(height / factor))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=min(sigma, 2.0))
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def pixelate(region: np.ndarray, blocks: int = _PIXELATE_BLOCKS) -> np.ndarray:
    height, width = region.shape[:2]
    block = max(2, max(height, width) // blocks)
    small = cv2.resize(region, (max(1, width // block), max(1, height // block)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


def region_masks(detections: Detections, shape: tuple[int, int], config: RedactConfig
                 ) -> list[tuple[tuple[int, int, int, int], np.ndarray | None]]:
    """Regions to hide, in whole pixels, clipped to the frame, each with its mask inside it (None = all of it).

    The boxes of one tracked object (the temporal cover gives it several: carried from both
    keyframes, interpolated, moved with the camera) make one region, the union of their shapes,
    so it is blurred once, not once per box. A face ellipse is drawn on the whole grown box before
    clipping: drawn on the clipped box it would shrink to fit and leave the corners of a face at the
    frame's edge uncovered.
    """
    height, width = shape
    scales = np.where(detections.label == Label.FACE, config.face_mask_scale, config.plate_mask_scale)
    grown = grow_boxes(detections.xyxy, scales, None, None)
    regions: list[tuple[tuple[int, int, int, int], np.ndarray | None]] = []
    for members in _objects(detections):
        u1, v1 = grown[members, :2].min(axis=0).tolist()
        u2, v2 = grown[members, 2:].max(axis=0).tolist()
        x1, y1, x2, y2 = max(u1, 0), max(v1, 0), min(u2, width), min(v2, height)
        if x2 <= x1 or y2 <= y1:
            continue
        shapes = [(grown[i], detections.label[i] == Label.FACE and config.face_shape == "ellipse") for i in members]
        if len(shapes) == 1 and not shapes[0][1]:
            regions.append(((x1, y1, x2, y2), None))
            continue
        canvas = np.zeros((v2 - v1, u2 - u1), np.uint8)
        for (b1, c1, b2, c2), ellipse in shapes:
            if ellipse:
                centre = ((b1 + b2 - 1) / 2 - u1, (c1 + c2 - 1) / 2 - v1)
                cv2.ellipse(canvas, (centre, (float(b2 - b1), float(c2 - c1)), 0), 255, thickness=-1)
            else:
                canvas[c1 - v1:c2 - v1, b1 - u1:b2 - u1] = 255
        regions.append(((x1, y1, x2, y2), canvas[y1 - v1:y2 - v1, x1 - u1:x2 - u1].astype(bool)))
    return regions


def _objects(detections: Detections) -> list[np.ndarray]:
    """Indices of the boxes of each object: one group per tracked object and label, a box without a track alone."""
    groups: dict[tuple[int, int], list[int]] = {}
    alone = []
    for i, (track_id, label) in enumerate(zip(detections.ids.tolist(), detections.label.tolist())):
        if track_id < 0:
            alone.append(np.array([i]))
        else:
            groups.setdefault((track_id, label), []).append(i)
    return alone + [np.array(members) for members in groups.values()]


def redaction_mask(detections: Detections, shape: tuple[int, int], config: RedactConfig) -> np.ndarray:
    """The full-frame boolean mask of pixels that redaction hides, for measuring coverage."""
    full = np.zeros(shape, dtype=bool)
    for (x1, y1, x2, y2), region_mask in region_masks(detections, shape, config):
        full[y1:y2, x1:x2] |= True if region_mask is None else region_mask
    return full


class _MaskLayout(NamedTuple):
    """The fixed masks at one frame size, worked out once: what to fill, and the box and mask to blur."""

    filled: np.ndarray | None  # H x W bool, None when no mask is filled
    blur_box: tuple[int, int, int, int] | None  # x1, y1, x2, y2 around every blurred mask
    blurred: np.ndarray | None  # uint8 mask inside blur_box


class FixedMasks:
    """The config's fixed privacy masks, drawn into a frame-sized mask once per frame size.

    Polygons are given as shares of the frame's width and height, so one config fits every
    resolution; the pixel masks are rasterised on first use for a size and kept (a camera keeps its
    size), so a frame costs only the fill and the blur themselves.
    """

    def __init__(self, masks: list[PrivacyMask]) -> None:
        self._masks = masks
        self._pixels: dict[tuple[int, int, str], np.ndarray] = {}
        self._layouts: dict[tuple[int, int], _MaskLayout] = {}

    def pixels(self, shape: tuple[int, int], hide: str) -> np.ndarray:
        """The boolean H x W mask of the polygons hidden by `hide` (fill or blur)."""
        key = (*shape, hide)
        if key not in self._pixels:
            self._pixels[key] = self._rasterise(shape, [m for m in self._masks if m.hide == hide])
        return self._pixels[key]

    def covered_share(self, shape: tuple[int, int]) -> float:
        """The share of a frame of this size that the masks hide (a pixel under two masks counts once)."""
        return float((self.pixels(shape, "fill") | self.pixels(shape, "blur")).mean())

    @staticmethod
    def _rasterise(shape: tuple[int, int], masks: list[PrivacyMask]) -> np.ndarray:
        height, width = shape
        canvas = np.zeros(shape, np.uint8)
        for mask in masks:
            # Corners at 0 and 1 are the frame's outer edges: scale to width and height, then round outwards
            # by drawing with a one-pixel outline as well as the filled inside.
            corners = np.round(np.array(mask.points) * (width, height)).astype(np.int32)
            cv2.fillPoly(canvas, [corners], 255)
            cv2.polylines(canvas, [corners], isClosed=True, color=255, thickness=1)
        return canvas.astype(bool)

    def _layout(self, shape: tuple[int, int]) -> _MaskLayout:
        if shape not in self._layouts:
            filled, blurred = self.pixels(shape, "fill"), self.pixels(shape, "blur")
            box = None
            if blurred.any():
                x, y, w, h = cv2.boundingRect(blurred.view(np.uint8))
                box = (x, y, x + w, y + h)
            self._layouts[shape] = _MaskLayout(filled if filled.any() else None, box,
                                               blurred[y:y + h, x:x + w].view(np.uint8) if box else None)
        return self._layouts[shape]

    def hide(self, image: np.ndarray) -> None:
        """Fill or blur every mask's pixels in place."""
        if not self._masks:
            return  # the default: not even a look at a frame-sized mask
        layout = self._layout(image.shape[:2])
        if layout.filled is not None:
            image[layout.filled] = 0
        if layout.blur_box is not None and layout.blurred is not None:
            x1, y1, x2, y2 = layout.blur_box
            region = image[y1:y2, x1:x2]
            _paste(region, _box_blur(region), layout.blurred)


def _box_blur(region: np.ndarray) -> np.ndarray:
    """The Gaussian blur for a hidden region: its strength grows with the region (see _SIGMA_PER_BOX_SIDE)."""
    return strong_blur(region, max(_MIN_SIGMA, _SIGMA_PER_BOX_SIDE * max(region.shape[:2])))


def _paste(region: np.ndarray, hidden: np.ndarray, mask: np.ndarray) -> None:
    """Write `hidden` into `region` where the uint8 `mask` is set; OpenCV's masked copy takes 0.03 ms for a
    400x300 region, np.copyto(where=) 1.4 ms."""
    region[:] = cv2.copyTo(hidden, mask, region.copy())


class Overlay(Protocol):
    """Something drawn on the redacted image before it is sealed (the stamp): it only adds, never reveals."""

    def draw(self, image_bgr: np.ndarray, frame: Frame) -> None: ...


class Redactor:
    def __init__(self, config: RedactConfig, overlay: Overlay | None = None) -> None:
        self._config = config
        self._fixed = FixedMasks(config.masks)
        self._overlay = overlay

    def redact(self, frame: Frame, verdict: Detections | DetectionFailure) -> RedactedFrame | None:
        """The redacted frame, or None when a failed frame is to be dropped.

        The frame's own image is hidden in place and sealed read-only; a read-only image (a frame
        redacted before) cannot be changed, so a copy of it is.
        """
        image = frame.image_bgr if frame.image_bgr.flags.writeable else frame.image_bgr.copy()
        if isinstance(verdict, Detections):
            try:
                self._hide_regions(image, verdict)
                self._fixed.hide(image)
                counts = RedactionCounts(faces=verdict.objects(Label.FACE), plates=verdict.objects(Label.PLATE))
                return self._seal(frame, image, counts, _read_only_copy(verdict))
            except (cv2.error, ValueError, IndexError) as exc:
                log.error("redaction of frame %d failed (%s); hiding the whole frame", frame.index, exc)
        if self._config.on_failure == "drop_frame":
            image.fill(0)  # nothing of it stays in memory either
            return None
        self._hide_whole(image)
        try:
            self._fixed.hide(image)  # a filled mask stays black, not a blurred shape of what was behind it
        except (cv2.error, ValueError, IndexError) as exc:
            log.error("fixed masks of frame %d failed (%s); the frame is filled black", frame.index, exc)
            image.fill(0)
        return self._seal(frame, image, RedactionCounts(whole_frame=True), _read_only_copy(Detections.empty()))

    def _seal(self, frame: Frame, image: np.ndarray, counts: RedactionCounts, hidden: Detections) -> RedactedFrame:
        if self._overlay is not None:
            try:
                self._overlay.draw(image, frame)  # after hiding: the detectors never saw it, it covers no leak
            except (cv2.error, ValueError) as exc:  # the frame is hidden already: store it unstamped
                log.warning("stamp of frame %d failed (%s)", frame.index, exc)
        image.flags.writeable = False  # what was sealed stays as sealed: a write into it raises ValueError
        return RedactedFrame(_SEAL, _Contents(image, frame.index, frame.t_mono_ns, frame.t_utc, counts, frame.fix,
                                              hidden, frame.t_media_ns))

    def _hide_whole(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        if self._config.mode == "fill":
            image.fill(0)
        elif self._config.mode == "pixelate":
            image[:] = pixelate(image, blocks=32)
        else:
            image[:] = strong_blur(image, sigma=max(height, width) * _SIGMA_PER_FRAME_SIDE)

    def _hide_regions(self, image: np.ndarray, detections: Detections) -> None:
        for (x1, y1, x2, y2), region_mask in region_masks(detections, image.shape[:2], self._config):
            region = image[y1:y2, x1:x2]
            hidden = self._hide(region)
            if region_mask is None:
                region[:] = hidden
            else:
                _paste(region, hidden, region_mask.view(np.uint8))

    def _hide(self, region: np.ndarray) -> np.ndarray:
        mode = self._config.mode
        if mode == "fill":
            return np.zeros_like(region)
        if mode == "pixelate":
            return pixelate(region)
        return _box_blur(region)
