"""`dashcam run` with fixed privacy masks and the burned-in stamp, as a user runs it: a real subprocess on a real
video file, and the stored segment decoded."""
from __future__ import annotations

from conftest import canary_frames, detail, read_all_frames, write_clip
from recording import file_run_config, run_dashcam


def test_a_recording_keeps_its_masks_hidden_and_carries_the_stamp(tmp_path):
    clip = write_clip(tmp_path / "camera.mp4", canary_frames(12, 240, 320), fps=10)
    config = file_run_config(tmp_path, clip, redact={"masks": [
        # The second canary patch (220..300, 150..230) that no detector finds: a mask hides it anyway.
        {"name": "rear seats", "points": [[0.65, 0.6], [0.97, 0.6], [0.97, 0.98], [0.65, 0.98]]},
        {"name": "neighbour", "points": [[0.3, 0.23], [0.58, 0.23], [0.58, 0.6], [0.3, 0.6]], "hide": "blur"}]},
        stamp={"enabled": True, "timezone": "UTC", "corner": "top-left", "height": 0.06})
    result = run_dashcam("run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    (video,) = (tmp_path / "rec").glob("dashcam_*.mp4")
    frames = read_all_frames(video)
    assert len(frames) == 12
    for image in frames:
        assert image[150:230, 220:300].max() <= 12  # filled: nothing of the patch, only codec noise
        assert detail(image[66:136, 104:176]) < 0.05 * detail(canary_frames(1)[0][66:136, 104:176])  # blurred
        assert (image[0:20, 0:200] > 230).all(axis=2).sum() > 100  # the stamp's white text, top left
