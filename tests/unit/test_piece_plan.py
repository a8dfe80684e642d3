"""How a long video is cut into pieces (`edge.pieces`): the stored ranges tile the video, each piece runs the
pipeline on its overlap from the single run's keyframe grid, and decoding starts at an input keyframe."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.config import TrackConfig
from edge.pieces import _pieces, overlap_frames


@st.composite
def videos(draw):
    total = draw(st.integers(1, 3000))
    keyframes = sorted({0, *draw(st.lists(st.integers(0, total - 1), max_size=60))})
    step = draw(st.integers(1, 1000))
    pts = [i * step for i in range(total)]
    return pts, keyframes


@given(videos(), st.integers(10, 2000), st.integers(1, 120), st.integers(1, 30))
def test_pieces_tile_the_video_and_each_runs_over_its_overlap_from_a_keyframe(video, piece_frames, overlap, cadence):
    pts, keyframes = video
    total = len(pts)
    pieces = _pieces(pts, keyframes, piece_frames, overlap, cadence)
    assert pieces[0].first == 0 and pieces[-1].end == total
    for before, after in zip(pieces, pieces[1:]):
        assert before.end == after.first and after.first in keyframes  # cut at the input's keyframes
    for piece in pieces:
        assert piece.first < piece.end
        assert piece.run_first <= max(0, piece.first - overlap) and piece.run_first % cadence == 0
        assert piece.run_end == min(total, piece.end + overlap)
        assert piece.seek_pts in [pts[k] for k in keyframes] and piece.seek_pts <= piece.run_first_pts
        assert piece.run_first_pts == pts[piece.run_first]
        assert piece.run_end_pts == (pts[piece.run_end] if piece.run_end < total else None)
        assert piece.run_pts == tuple(pts[piece.run_first:piece.run_end])
    if len(pieces) > 1:
        assert pieces[-1].end - pieces[-1].first >= piece_frames // 2 - 0  # no stub at the end


def test_the_overlap_covers_the_trackers_delay_line_gap_and_hold_on_the_keyframe_grid():
    track = TrackConfig()
    overlap = overlap_frames(track)
    assert overlap >= max(track.delay_frames, track.max_gap_frames, track.hold_frames)
    assert overlap % track.detect_every == 0


def test_a_piece_reported_done_whose_record_cannot_be_read_fails_its_video_instead_of_joining_without_it(tmp_path):
    from fractions import Fraction
    from pathlib import Path

    from edge.anonymize import Job
    from edge.batch import _SplitVideo
    from edge.pieces import PieceJob, VideoPlan, _pieces
    from edge.pipeline import RunStats

    pts = list(range(0, 300 * 3000, 3000))
    pieces = _pieces(pts, [0, 100, 200], 100, 30, 3)
    plan = VideoPlan(Path("in.mp4"), 300, Fraction(1, 90000), 0, 30.0, tuple(pieces))
    jobs = [PieceJob(plan, piece, tmp_path, ".mp4") for piece in plan.pieces]
    split = _SplitVideo(Job(Path("in.mp4"), tmp_path / "out.mp4"), jobs, tmp_path)
    results = []
    for job in jobs:  # every worker said it finished, but no record reached this folder
        split.piece_done(job, RunStats(frames_stored=100), None, results.append)
    assert len(results) == 1 and results[0].stats is None and "cannot be read" in str(results[0].error)
    assert not (tmp_path / "out.mp4").exists()
