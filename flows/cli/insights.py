"""`retrain runs data`: a run's data insights as plain-text tables for a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrain.adapters.tfdv_insights import DataInsights


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.3g}"


def _pct(value: float | None) -> str:
    return "?" if value is None else _fmt(value)


def _table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return (indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths))).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def render_insights(insights: DataInsights) -> str:
    """Plain-text tables of the insights, for a terminal."""
    out: list[str] = []
    for split in insights.splits:
        out.append(f"split {split.split}: {split.rows} rows, {split.features} features")
        if split.numeric:
            out += ["", "  numeric features"]
            out += _table(
                ["feature", "count", "missing %", "empty %", "mean", "std dev", "min", "median",
                 "max", "zeros %"],
                [[f.name, str(f.count), _fmt(f.missing_pct), _pct(f.empty_pct), _fmt(f.mean),
                  _fmt(f.std_dev), _fmt(f.min), _fmt(f.median), _fmt(f.max), _fmt(f.zeros_pct)]
                 for f in split.numeric],
            )
        if split.categorical:
            out += ["", "  categorical features"]
            out += _table(
                ["feature", "count", "missing %", "empty %", "unique", "avg length",
                 "top values"],
                [[f.name, str(f.count), _fmt(f.missing_pct), _pct(f.empty_pct), str(f.unique),
                  _fmt(f.avg_length),
                  ", ".join(f"{value} ({freq})" for value, freq in f.top_values)]
                 for f in split.categorical],
            )
        out.append("")
    if insights.schema:
        out.append(f"schema: {len(insights.schema)} features")
        out += _table(
            ["feature", "type", "required", "domain", "shape"],
            [[f.name, f.type, "yes" if f.required else "no", f.domain or "-", f.shape or "-"]
             for f in insights.schema],
        )
    else:
        out.append("schema: none read")
    out += ["", f"HTML report: {insights.html_report or 'none'}"]
    return "\n".join(out) + "\n"
