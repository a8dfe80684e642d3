"""A `RedactedFrame` cannot be forged: one test per way in, and the sinks' refusal of anything else."""
import copy
import dataclasses
import datetime as dt
import pickle

import numpy as np
import pytest

from edge.config import RedactConfig
from edge.record.encoder import EncoderSettings, VideoEncoder
from edge.record.images import write_image
from edge.redact import RedactedFrame, Redactor, require_redacted
from edge.types import DetectionFailure, Detections, Frame, Label, RedactionCounts
from recording import recorder

T_UTC = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
FIELDS = ("image_bgr", "index", "t_mono_ns", "t_utc", "counts", "fix", "hidden", "t_media_ns")


def _raw() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def _frame(index: int = 7, image: np.ndarray | None = None) -> Frame:
    return Frame(_raw() if image is None else image, index, 1_000 + index, T_UTC, t_media_ns=500)


def _plate() -> Detections:
    return Detections(np.array([[2, 2, 10, 8]], np.float32), np.array([0.9]), np.array([Label.PLATE]))


@pytest.fixture
def sealed() -> RedactedFrame:
    return Redactor(RedactConfig()).redact(_frame(), _plate())


@pytest.fixture
def encoder(tmp_path):
    video = VideoEncoder(tmp_path / "out.mp4", 16, 16, 10, EncoderSettings(preset="ultrafast"))
    yield video
    video.abort()


def test_a_sealed_frame_reads_like_the_frame_it_came_from(sealed):
    assert type(sealed) is RedactedFrame
    assert (sealed.index, sealed.t_mono_ns, sealed.t_utc, sealed.fix) == (7, 1_007, T_UTC, None)
    assert sealed.t_media_ns == 500 and sealed.timeline_ns == 500
    assert sealed.counts == RedactionCounts(plates=1) and len(sealed.hidden) == 1
    assert sealed.image_bgr.shape == (16, 16, 3) and not sealed.image_bgr.flags.writeable
    assert require_redacted(sealed, "test") is sealed
    assert sealed == sealed and sealed != Redactor(RedactConfig()).redact(_frame(), _plate())  # identity


# ---- ways to make one without redacting ------------------------------------------------------------------


def test_direct_construction_without_the_seal_is_refused():
    with pytest.raises(TypeError):
        RedactedFrame(_raw(), 0, 0, T_UTC, RedactionCounts())


@pytest.mark.parametrize("guess", [None, object(), "seal", True])
def test_a_guessed_seal_is_refused(sealed, guess):
    from edge.redact import _Contents  # what a forger would build; the seal is what it lacks
    contents = _Contents(_raw(), 0, 0, T_UTC, RedactionCounts(), None, Detections.empty(), None)
    with pytest.raises(TypeError, match="only be created by edge.redact"):
        RedactedFrame(guess, contents)
    with pytest.raises(TypeError):  # nor can a sealed frame be re-initialised with other pixels
        sealed.__init__(guess, contents)
    assert sealed.index == 7


def test_an_instance_made_without_init_holds_nothing_and_is_refused(encoder):
    blank = object.__new__(RedactedFrame)
    with pytest.raises(TypeError, match="not sealed"):
        _ = blank.image_bgr
    with pytest.raises(TypeError, match="not sealed"):
        encoder.write(blank)
    assert encoder.frame_count == 0


def test_an_object_relabelled_as_redacted_is_refused(encoder):
    class LooksAlike:
        __slots__ = ("__weakref__",)

    forged = LooksAlike()
    forged.__class__ = RedactedFrame  # same layout, so Python allows it: the type alone proves nothing
    assert type(forged) is RedactedFrame
    with pytest.raises(TypeError, match="not sealed"):
        encoder.write(forged)


def test_dataclasses_replace_is_refused(sealed):
    with pytest.raises(TypeError):
        dataclasses.replace(sealed, image_bgr=_raw())


def test_replace_protocol_is_refused(sealed):
    with pytest.raises(TypeError, match="cannot be copied"):
        sealed.__replace__(image_bgr=_raw())  # what Python 3.13's copy.replace calls


@pytest.mark.skipif(not hasattr(copy, "replace"), reason="copy.replace is new in Python 3.13")
def test_copy_replace_is_refused(sealed):
    with pytest.raises(TypeError, match="cannot be copied"):
        copy.replace(sealed, image_bgr=_raw())


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, pickle.dumps,
                                       lambda f: pickle.dumps(f, protocol=0)],
                         ids=["copy", "deepcopy", "pickle", "pickle-protocol-0"])
def test_copy_deepcopy_and_pickle_are_refused(sealed, duplicate):
    with pytest.raises(TypeError, match="cannot be copied"):
        duplicate(sealed)


def test_subclassing_is_refused():
    with pytest.raises(TypeError, match="cannot be subclassed"):
        class Forged(RedactedFrame):
            pass
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Forged", (RedactedFrame,), {})


# ---- ways to change one after redaction ------------------------------------------------------------------


@pytest.mark.parametrize("name", FIELDS + ("timeline_ns", "extra"))
def test_attributes_cannot_be_set_or_deleted(sealed, name):
    with pytest.raises(AttributeError):
        setattr(sealed, name, _raw())
    with pytest.raises(AttributeError):
        delattr(sealed, name)


@pytest.mark.parametrize("name", FIELDS + ("extra",))
def test_object_setattr_finds_nothing_to_set(sealed, name):
    """No slot holds a field: they are properties without setters, and there is no __dict__."""
    with pytest.raises(AttributeError):
        object.__setattr__(sealed, name, _raw())
    with pytest.raises(AttributeError):
        object.__delattr__(sealed, name)
    assert not hasattr(sealed, "__dict__")
    assert sealed.index == 7 and not sealed.image_bgr.flags.writeable


def test_writing_into_the_image_raises(sealed):
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        sealed.image_bgr[:] = _raw()
    with pytest.raises(ValueError, match="read-only"):
        np.copyto(sealed.image_bgr, _raw())
    view = sealed.image_bgr[2:8]
    with pytest.raises(ValueError):  # a view of a read-only array cannot be made writable
        view.flags.writeable = True


def test_the_hidden_boxes_are_read_only_copies():
    verdict = _plate()
    sealed = Redactor(RedactConfig()).redact(_frame(), verdict)
    for array in (sealed.hidden.xyxy, sealed.hidden.score, sealed.hidden.label, sealed.hidden.track_id):
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
    verdict.xyxy[0, 0] = 3  # the caller's (a tracker's) arrays are not frozen along with them
    assert sealed.hidden.xyxy[0, 0] == 2


def test_the_captured_frame_shares_the_sealed_read_only_image():
    frame = _frame()
    sealed = Redactor(RedactConfig()).redact(frame, Detections.empty())
    assert frame.image_bgr is sealed.image_bgr
    with pytest.raises(ValueError, match="read-only"):
        frame.image_bgr[:] = _raw()  # the raw frame's handle cannot put pixels back either


def test_a_frame_redacted_twice_is_hidden_in_a_copy():
    frame = _frame()
    first = Redactor(RedactConfig()).redact(frame, Detections.empty())
    second = Redactor(RedactConfig()).redact(frame, DetectionFailure("scripted"))
    assert second.counts.whole_frame and second.image_bgr is not first.image_bgr
    assert not second.image_bgr.flags.writeable


# ---- the sinks -------------------------------------------------------------------------------------------


def test_the_encoder_takes_a_sealed_frame(sealed, encoder):
    encoder.write(sealed)
    assert encoder.frame_count == 1


def test_a_raw_frame_is_refused_by_every_sink(tmp_path, encoder):
    frame = _frame()
    with pytest.raises(TypeError, match="VideoEncoder accepts RedactedFrame only, got Frame"):
        encoder.write(frame)
    with pytest.raises(TypeError, match="write_image accepts RedactedFrame only, got Frame"):
        write_image(tmp_path / "still.png", frame)
    segments = recorder(tmp_path / "recordings")
    with pytest.raises(TypeError, match="SegmentRecorder accepts RedactedFrame only"):
        segments.write(frame)
    segments.close()
    assert encoder.frame_count == 0 and not (tmp_path / "still.png").exists()
    assert not list((tmp_path / "recordings").rglob("*.mp4*"))


def test_a_sealed_frame_whose_image_was_made_writable_again_is_refused(tmp_path, sealed, encoder):
    sealed.image_bgr.flags.writeable = True  # numpy allows it on an array that owns its memory
    with pytest.raises(TypeError, match="made writable again"):
        encoder.write(sealed)
    with pytest.raises(TypeError, match="made writable again"):
        write_image(tmp_path / "still.png", sealed)
    assert encoder.frame_count == 0 and not (tmp_path / "still.png").exists()
