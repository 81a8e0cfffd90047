"""Training curves of a run: a PNG kept next to the run and a plain-text plot for the terminal.

Input is the per-epoch history the trainer records: ``TrainingMetricsHistory`` rows or any
objects with ``.epoch`` and ``.metrics``, or ``(epoch, metrics)`` pairs. Metrics whose name
contains "loss" share one chart and the rest (recall@k …) another, so that a loss in the
hundreds never flattens recalls in [0, 1].
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib loads only when a PNG is drawn
    from matplotlib.figure import Figure

AXIS_WIDTH = 12
"""Columns ``text_curves`` puts left of the plot area: a 10-character y label and " |"."""

_MARKERS = "*o+x#@%&=~"
_Series = dict[str, list[tuple[int, float]]]


def _finite(value: Any) -> float | None:
    # Histories come back from JSON, where NaN may have become null or a string.
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _name_key(name: str) -> tuple[list[Any], bool]:
    # Keeps train/val pairs together and recall_at_5 before recall_at_10.
    base = name.removeprefix("val_")
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", base)], name != base


def _collect(epochs: Iterable[Any]) -> tuple[list[tuple[str, _Series]], list[int]]:
    rows = []
    for record in epochs:
        is_row = hasattr(record, "epoch") and hasattr(record, "metrics")
        epoch, metrics = (record.epoch, record.metrics) if is_row else record
        rows.append((int(epoch), dict(metrics or {})))
    if not rows:
        raise ValueError("no epochs recorded: the run has no training metrics history to plot")
    rows.sort(key=lambda row: row[0])
    names = sorted({name for _, metrics in rows for name in metrics}, key=_name_key)
    series = {
        name: [(e, v) for e, m in rows if (v := _finite(m.get(name))) is not None] for name in names
    }
    groups = [(title, {n: pts for n, pts in series.items() if ("loss" in n) == is_loss})
              for title, is_loss in (("losses", True), ("metrics", False))]
    return groups, [e for e, _ in rows]


def curve_figure(epochs: Iterable[Any], title: str) -> Figure:
    """Build the two-panel curve figure (losses, other metrics); also fits ``mlflow.log_figure``.

    Train metrics are solid, their ``val_`` twins dashed in the same colour; every recorded
    point gets a marker so that a one-epoch run is visible. Raises ValueError without epochs.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups, epoch_numbers = _collect(epochs)
    figure = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    figure.suptitle(title)
    for ax, (group, series) in zip(figure.subplots(1, 2), groups):
        ax.set_title(group)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epoch_numbers[0] == epoch_numbers[-1]:
            ax.set_xlim(epoch_numbers[0] - 0.5, epoch_numbers[0] + 0.5)
        bases = list(dict.fromkeys(name.removeprefix("val_") for name in series))
        for name, points in series.items():
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(
                xs, ys, label=name, marker="o", markersize=3,
                linestyle="--" if name.startswith("val_") else "-",
                color=f"C{bases.index(name.removeprefix('val_')) % 10}",
            )
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            # An empty legend would warn, and an empty panel should say why it is empty.
            ax.text(0.5, 0.5, "no values recorded", ha="center", va="center",
                    transform=ax.transAxes)
    return figure


def write_curve_png(epochs: Iterable[Any], path: str | Path, title: str) -> Path:
    """Write the curve figure as a PNG at ``path`` (parents created, replaced atomically).

    Raises ValueError if no epochs were recorded, before anything is written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    target = Path(path)
    figure = curve_figure(epochs, title)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            FigureCanvasAgg(figure).print_png(handle)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the plot from other readers of the run
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _fmt(value: float, room: int = 10) -> str:
    for digits in (4, 3, 2, 1):
        text = f"{value:.{digits}g}"
        if len(text) <= room:
            return text
    return text[:room]


def _ticks(epochs: list[int], col: Any, width: int) -> list[tuple[int, str, int]]:
    # Greedy left to right with a one-space gap; the last epoch always gets its label.
    candidates = []
    for epoch in epochs:
        text, c = str(epoch), col(epoch)
        if len(text) <= width:
            candidates.append((min(max(c - len(text) // 2, 0), width - len(text)), text, c))
    placed: list[tuple[int, str, int]] = []
    for cand in candidates:
        if not placed or cand[0] > placed[-1][0] + len(placed[-1][1]):
            placed.append(cand)
    if candidates and placed[-1] != candidates[-1]:
        while placed and placed[-1][0] + len(placed[-1][1]) >= candidates[-1][0]:
            placed.pop()
        placed.append(candidates[-1])
    return placed


def _chart(title: str, series: _Series, epochs: list[int], width: int, height: int) -> list[str]:
    lines = [f"{title} by epoch"]
    values = [v for points in series.values() for _, v in points]
    if values:
        lo, hi, first, last = min(values), max(values), epochs[0], epochs[-1]

        def col(e: int) -> int:
            return 0 if last == first else round((e - first) * (width - 1) / (last - first))

        def row(v: float) -> int:
            return (height - 1) // 2 if hi == lo else round((hi - v) * (height - 1) / (hi - lo))

        grid = [[" "] * width for _ in range(height)]
        for i, points in enumerate(series.values()):
            for epoch, value in points:
                grid[row(value)][col(epoch)] = _MARKERS[i % len(_MARKERS)]
        mid = (height - 1) // 2
        labels = {mid: hi} if hi == lo else {
            mid: hi - (hi - lo) * mid / (height - 1), 0: hi, height - 1: lo}
        for r, cells in enumerate(grid):
            label = _fmt(labels[r]) if r in labels else ""
            lines.append(f"{label:>{AXIS_WIDTH - 2}} |{''.join(cells)}".rstrip())
        axis, tick_row = ["-"] * width, [" "] * width
        for start, text, c in _ticks(epochs, col, width):
            axis[c] = "+"
            tick_row[start:start + len(text)] = text
        lines.append(" " * (AXIS_WIDTH - 1) + "+" + "".join(axis))
        lines.append((" " * AXIS_WIDTH + "".join(tick_row)).rstrip())
    else:
        lines.append("  (no values recorded)")
    budget = width + AXIS_WIDTH
    for i, (name, points) in enumerate(series.items()):
        ys = [v for _, v in points]
        full = f"  min {_fmt(min(ys))}  max {_fmt(max(ys))}" if ys else "  (no values)"
        # In a narrow budget "last" goes first; min and max are what the axis labels lack.
        stats = f"{full}  last {_fmt(ys[-1])}" if ys and len(full) + 15 < budget else full
        room = budget - 4 - len(stats)
        shown = name if len(name) <= room else name[: max(room - 2, 1)] + ".."
        lines.append(f"  {_MARKERS[i % len(_MARKERS)]} {shown}{stats}"[:budget])
    return lines


def text_curves(epochs: Iterable[Any], width: int = 60, height: int = 10) -> str:
    """Render the curves as plain-text charts: losses first, then the other metrics.

    Each chart is ``height`` grid rows of ``width`` columns with the y range (min, middle,
    max) on the left, an x axis labelled with epoch numbers, and a legend line per metric
    with its marker and its min/max/last values. NaN and missing values are skipped; where
    two series share a cell, the one listed later wins. Every line is at most
    ``width + AXIS_WIDTH`` characters. Raises ValueError if no epochs were recorded.
    """
    if width < 8 or height < 2:
        raise ValueError(f"text plot needs width >= 8 and height >= 2, got {width}x{height}")
    groups, epoch_numbers = _collect(epochs)
    charts = [_chart(name, series, epoch_numbers, width, height)
              for name, series in groups if series]
    return "\n\n".join("\n".join(chart) for chart in charts)
