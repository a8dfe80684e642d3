"""Benchmark reports: named runs side by side as a terminal table, Markdown, JSON and PNG plots.

A `BenchReport` holds one `RunReport` per run (a detector, a cadence, a config), what the
annotation loader counted, and the reproducibility facts that make numbers comparable
(package version, machine, model hashes, config). matplotlib is optional: it is imported
only by `write_plots`, which names the extra to install when it is missing.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import edge
from edge.bench.coverage import SIZE_BANDS
from edge.bench.metrics import BenchResult, ClassMetrics, class_name
from edge.bench.truth import LoadIssues
from edge.errors import UserError
from edge.record.atomic import write_atomic
from edge.types import Label

CLASSES = [class_name(label) for label in Label]
_HASH_CHUNK = 1 << 20


class PlotsUnavailable(UserError):
    """Plots were asked for but matplotlib is not installed."""


@dataclass
class RunReport:
    """One run's metrics and what it ran with; `fps` and `stage_ms` are the caller's measurements."""

    name: str
    metrics: BenchResult
    fps: float | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean milliseconds per frame, by stage
    models: dict[str, str] = field(default_factory=dict)  # model file name -> sha256
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping) -> RunReport:
        return cls(**{**data, "metrics": BenchResult.from_dict(data["metrics"])})


@dataclass
class BenchReport:
    runs: list[RunReport]
    annotations: LoadIssues | None = None
    reproducibility: dict[str, Any] = field(default_factory=dict)  # see `reproducibility()`

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> BenchReport:
        issues = data.get("annotations")
        return cls([RunReport.from_dict(run) for run in data["runs"]],
                   LoadIssues.from_dict(issues) if issues else None, dict(data.get("reproducibility", {})))


# --- reproducibility -------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    """The machine and runtime that produced the numbers."""
    return {
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "onnxruntime": _dist_version("onnxruntime"), "numpy": np.__version__,
        "opencv": _dist_version("opencv-python-headless") or _dist_version("opencv-python"),
    }


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def reproducibility(**extra: Any) -> dict[str, Any]:
    """The report-wide block: package version and machine, plus whatever the caller adds."""
    return {"package_version": edge.__version__, "machine": machine_info(), **extra}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_hashes(paths: Iterable[Path]) -> dict[str, str]:
    return {Path(path).name: sha256_file(Path(path)) for path in paths}


# --- rows shared by the table and Markdown ---------------------------------------------------

Getter = Callable[[RunReport], Any]
Spec = tuple[str, Getter, int | None]  # label, value of a run, decimals (None: a count)


def _band_text(low: float, high: float) -> str:
    if low == 0:
        return f"h<{high:g}px"
    return f"h>={low:g}px" if high == float("inf") else f"{low:g}-{high:g}px"


def _class_specs(name: str, tau: float) -> list[Spec]:
    def of(get: Callable[[ClassMetrics], Any]) -> Getter:
        return lambda run: get(run.metrics.classes[name])

    def recall_in(band: str) -> Getter:
        return of(lambda c: c.recall_by_size[band].recall)

    def hidden_in(band: str) -> Getter:
        return of(lambda c: _band_share(c, band))

    specs: list[Spec] = [(f"{name} boxes", of(lambda c: c.gt_boxes), None),
                         (f"{name} recall @ tau {tau:g}", of(lambda c: c.recall), 3)]
    specs += [(f"{name} recall {band} ({_band_text(low, high)})",
               recall_in(band), 3) for band, low, high in SIZE_BANDS]
    specs.append((f"{name} hidden (stored detail)", of(lambda c: c.hidden), 3))
    specs += [(f"{name} hidden {band} ({_band_text(low, high)})", hidden_in(band), 3)
              for band, low, high in SIZE_BANDS]
    return specs + [
        (f"{name} frame leak rate", of(lambda c: c.frame_leak_rate), 3),
        (f"{name} longest leak run (frames)", of(lambda c: c.longest_leak_run), None),
        (f"{name} longest detail leak run (frames)", of(lambda c: c.longest_detail_leak_run), None),
        (f"{name} detector precision", of(lambda c: c.detector.precision), 3),
        (f"{name} detector recall", of(lambda c: c.detector.recall), 3),
        (f"{name} detector AP50", of(lambda c: c.detector.ap50), 3),
    ]


def _band_share(metrics: ClassMetrics, band: str) -> float | None:
    """The hidden share of one size band; None in reports written before stored detail was measured."""
    hidden = metrics.hidden_by_size.get(band)
    return hidden.recall if hidden is not None else None


def _run_specs(runs: list[RunReport]) -> list[Spec]:
    specs: list[Spec] = [
        ("frames", lambda r: r.metrics.frames, None),
        ("frames hidden whole", lambda r: r.metrics.frames_whole_frame, None),
        ("frames dropped", lambda r: r.metrics.frames_dropped, None),
        ("frames the detector ran on", lambda r: r.metrics.frames_detector_ran, None),
        ("over-redaction (share of area)", lambda r: r.metrics.over_redaction, 4),
        ("over-redaction, region masks only", lambda r: r.metrics.over_redaction_regions_only, 4),
        ("over-redaction, textured area that lost its detail", lambda r: r.metrics.over_redaction_textured, 4),
        ("fps", lambda r: r.fps, 1),
    ]
    stages = list(dict.fromkeys(stage for run in runs for stage in run.stage_ms))
    return specs + [(f"{stage} ms/frame", lambda r, s=stage: r.stage_ms.get(s), 1) for stage in stages]


def _fmt(value: Any, decimals: int | None) -> str:
    if value is None:
        return "-"
    return str(value) if decimals is None else f"{value:.{decimals}f}"


def _rows(report: BenchReport) -> list[list[str]]:
    tau = report.runs[0].metrics.tau if report.runs else 0.0
    specs = [spec for name in CLASSES for spec in _class_specs(name, tau)] + _run_specs(report.runs)
    return [[label, *(_fmt(get(run), decimals) for run in report.runs)] for label, get, decimals in specs]


def _notes(report: BenchReport) -> list[str]:
    return [f"annotations: {line}" for line in (report.annotations.warnings() if report.annotations else [])]


# --- renderers --------------------------------------------------------------------------------

def render_table(report: BenchReport) -> str:
    """Plain aligned text for a terminal: metrics down, runs across."""
    rows = [["metric", *(run.name for run in report.runs)], *_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[0]) if column == 0 else cell.rjust(widths[column])
                       for column, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines + _notes(report)) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def render_markdown(report: BenchReport) -> str:
    """Tables for a paper or an issue: the metrics, recall over tau, notes and provenance."""
    names = [run.name for run in report.runs]
    lines = ["## Blur-recall benchmark", "", *_markdown_table(["metric", *names], _rows(report)), ""]
    if report.runs:
        lines += ["### Recall by coverage threshold tau", "", *_curve_table(report), ""]
    lines += [f"- {note}" for note in _notes(report)]
    lines += _provenance(report)
    return "\n".join(lines).rstrip() + "\n"


def _curve_table(report: BenchReport) -> list[str]:
    header = ["tau", *(f"{run.name} {name}" for run in report.runs for name in CLASSES)]
    rows = [[f"{tau:.2f}", *(_fmt(run.metrics.classes[name].recall_curve[i], 3)
                              for run in report.runs for name in CLASSES)]
            for i, tau in enumerate(report.runs[0].metrics.taus)]
    return _markdown_table(header, rows)


def _provenance(report: BenchReport) -> list[str]:
    facts = report.reproducibility
    machine = facts.get("machine", {})
    lines = ["", "### Reproducibility", "",
             f"- privacy-dashcam {facts.get('package_version', '?')}, Python {machine.get('python', '?')}, "
             f"onnxruntime {machine.get('onnxruntime', '?')}, {machine.get('platform', '?')}, "
             f"{machine.get('cpu_count', '?')} CPUs"]
    for run in report.runs:
        lines += [f"- {run.name}: `{model}` sha256 `{digest}`" for model, digest in run.models.items()]
    return lines


def render_json(report: BenchReport) -> str:
    # default=str: config values such as Path are recorded as text rather than failing the run
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


def read_json(path: Path) -> BenchReport:
    """A report written by `render_json`, e.g. to compare runs made separately."""
    return BenchReport.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def write_text(path: Path, text: str) -> Path:
    """Write atomically (StorageError on failure): a half-written report must not pass for a whole one."""
    return write_atomic(Path(path), text.encode("utf-8"))


# --- plots --------------------------------------------------------------------------------------

def _figure_type() -> type:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib: pip install 'privacy-dashcam[plots]'") from None
    return Figure


def write_plots(report: BenchReport, folder: Path) -> list[Path]:
    """recall_vs_tau.png and recall_by_size.png in `folder`, one panel per class, one line or bar per run."""
    figure_type = _figure_type()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [_plot(report, figure_type, folder / "recall_vs_tau.png", _draw_curve),
            _plot(report, figure_type, folder / "recall_by_size.png", _draw_bands)]


Draw = Callable[[Any, BenchReport, str], None]  # (matplotlib Axes, report, class name)


def _plot(report: BenchReport, figure_type: type, path: Path, draw: Draw) -> Path:
    figure = figure_type(figsize=(10, 4))
    for axes, name in zip(figure.subplots(1, len(CLASSES)), CLASSES):
        draw(axes, report, name)
        axes.set(title=name, ylim=(0, 1.02))
        axes.legend(loc="best")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, dpi=120, format="png")
    return write_atomic(Path(path), image.getvalue())


def _values(values: Iterable[float | None]) -> list[float]:
    return [float("nan") if value is None else value for value in values]


def _draw_curve(axes: Any, report: BenchReport, name: str) -> None:
    for run in report.runs:
        axes.plot(run.metrics.taus, _values(run.metrics.classes[name].recall_curve), marker=".", label=run.name)
    if report.runs:
        axes.axvline(report.runs[0].metrics.tau, linestyle=":", color="grey")
    axes.set(xlabel="tau (share of box area hidden)", ylabel="recall", xlim=(0, 1))


def _draw_bands(axes: Any, report: BenchReport, name: str) -> None:
    bands = [band for band, _, _ in SIZE_BANDS]
    positions = np.arange(len(bands))
    width = 0.8 / max(1, len(report.runs))
    for index, run in enumerate(report.runs):
        recalls = _values(run.metrics.classes[name].recall_by_size[band].recall for band in bands)
        axes.bar(positions + index * width, recalls, width, label=run.name)
    axes.set_xticks(positions + width * (len(report.runs) - 1) / 2,
                    [f"{band}\n{_band_text(low, high)}" for band, low, high in SIZE_BANDS])
    tau = report.runs[0].metrics.tau if report.runs else 0.0
    axes.set(ylabel=f"recall @ tau {tau:g}")
