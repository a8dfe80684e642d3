"""Report rendering (table, Markdown, JSON, plots), reproducibility facts and the progress line."""
from __future__ import annotations

import hashlib
import io
import json
import sys

import numpy as np
import pytest

import edge
from edge.bench.metrics import FrameOutcome, MetricsAccumulator
from edge.progress import Progress
from edge.bench.report import (BenchReport, PlotsUnavailable, RunReport, machine_info, model_hashes, read_json,
                               render_json, render_markdown, render_table, reproducibility, write_plots, write_text)
from edge.bench.truth import GroundTruth, LoadIssues
from edge.types import Label

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _result(covered_share: float):
    """One 100x100 frame with a 10x10 face whose left `covered_share` is hidden (and whose stored pixels
    lost their detail only when all of it is), and one frame hidden whole."""
    accumulator = MetricsAccumulator()
    face = GroundTruth("0", np.array([[0, 0, 10, 10]], np.float32), np.array([Label.FACE]), np.array([1]), 100, 100)
    applied = np.zeros((100, 100), bool)
    applied[0:10, 0:round(10 * covered_share)] = True
    accumulator.add_frame(face, applied, hidden=np.array([covered_share == 1.0]))
    accumulator.add_frame(GroundTruth.empty("1", (100, 100)), FrameOutcome.WHOLE_FRAME)
    return accumulator.result()


@pytest.fixture
def report() -> BenchReport:
    issues = LoadIssues(source="gt.xml", format="cvat", boxes=1, clipped_boxes=2, unknown_classes={"car": 3})
    runs = [RunReport("yunet", _result(1.0), fps=24.5, stage_ms={"detect": 30.25, "redact": 2.0},
                      models={"yunet.onnx": "ab" * 32}, config={"detect": {"cadence": 1}}),
            RunReport("cadence 3", _result(0.5), fps=61.0, stage_ms={"detect": 10.0})]
    return BenchReport(runs, issues, reproducibility(annotations_sha256="00" * 32))


def test_json_round_trip(report, tmp_path):
    text = render_json(report)
    assert BenchReport.from_dict(json.loads(text)) == report
    path = write_text(tmp_path / "out.json", text)
    assert read_json(path) == report
    assert not list(tmp_path.glob("*.partial"))


def test_markdown_contains_the_numbers(report):
    text = render_markdown(report)
    assert "| metric | yunet | cadence 3 |" in text
    assert "| face recall @ tau 0.9 | 1.000 | 0.000 |" in text
    assert "| fps | 24.5 | 61.0 |" in text
    assert "| redact ms/frame | 2.0 | - |" in text
    assert "| face hidden (stored detail) | 1.000 | 0.000 |" in text
    assert "| face hidden tiny (h<16px) | 1.000 | 0.000 |" in text
    assert "| face longest detail leak run (frames) | 0 | 1 |" in text
    assert "| 0.50 | 1.000 | - | 1.000 | - |" in text  # recall curve: half covered passes tau 0.5
    assert "unknown classes 'car' (3)" in text
    assert f"privacy-dashcam {edge.__version__}" in text and "ab" * 32 in text


def test_reports_from_before_stored_detail_render_without_it(report):
    data = json.loads(render_json(report))
    for run in data["runs"]:
        for metrics in run["metrics"]["classes"].values():
            del metrics["hidden"], metrics["hidden_by_size"], metrics["longest_detail_leak_run"]
    text = render_markdown(BenchReport.from_dict(data))
    assert "| face hidden (stored detail) | - | - |" in text and "| face hidden tiny (h<16px) | - | - |" in text
    assert "| face recall @ tau 0.9 | 1.000 | 0.000 |" in text


def test_terminal_table_is_aligned(report):
    lines = render_table(report).splitlines()
    table = [line for line in lines if not line.startswith("annotations:")]
    assert len({len(line) for line in table}) == 1
    assert lines[0].split() == ["metric", "yunet", "cadence", "3"]
    recall = next(line for line in lines if line.startswith("face recall @ tau"))
    assert recall.split()[-2:] == ["1.000", "0.000"]
    assert any(line.startswith("annotations: clipped 2 boxes") for line in lines)


def test_plots_write_png_files(report, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the optional 'plots' extra (matplotlib)")
    paths = write_plots(report, tmp_path / "plots")
    assert [p.name for p in paths] == ["recall_vs_tau.png", "recall_by_size.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plots_without_matplotlib_name_the_extra(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail as if not installed
    with pytest.raises(PlotsUnavailable, match=r"pip install 'privacy-dashcam\[plots\]'"):
        write_plots(report, tmp_path)


def test_reproducibility_facts(tmp_path):
    facts = reproducibility()
    assert facts["package_version"] == edge.__version__
    assert set(machine_info()) >= {"platform", "python", "cpu_count", "onnxruntime"}
    model = tmp_path / "m.onnx"
    model.write_bytes(b"weights")
    assert model_hashes([model]) == {"m.onnx": hashlib.sha256(b"weights").hexdigest()}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_redraws_at_most_every_interval_and_ends_the_line():
    stream, clock = _Terminal(), _Clock()
    with Progress(360, stream=stream, min_interval_s=0.5, clock=clock) as progress:
        progress.update(1)
        clock.now = 0.1
        progress.update(2)  # too soon: skipped
        clock.now = 0.6
        progress.update(120)
        progress.update(360)  # the last one is always drawn
    assert stream.getvalue() == "\rframe 1/360 (0%)\rframe 120/360 (33%)\rframe 360/360 (100%)\n"


def test_progress_is_silent_when_not_a_terminal():
    stream = io.StringIO()
    with Progress(10, stream=stream) as progress:
        progress.update(5)
    assert stream.getvalue() == ""
    assert Progress(None, stream=stream).text(7) == "frame 7"


def test_a_batch_progress_bar_shows_its_share_and_the_time_left_from_the_rate_so_far():
    stream, clock = _Terminal(), _Clock()
    with Progress(4, unit="task", stream=stream, min_interval_s=0, clock=clock, bar=True) as progress:
        clock.now = 30.0
        progress.update(1)  # 30 s a task: three more take 1m30s
        clock.now = 120.0
        progress.update(4)
    drawn = stream.getvalue().split("\r")[1:]
    assert drawn[0].startswith("[#####...............] 1/4 tasks (25%), 1m30s left")
    assert drawn[1].startswith("[####################] 4/4 tasks (100%)") and "left" not in drawn[1]
