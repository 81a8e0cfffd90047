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


def _value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_distances(view) -> str:
    """`retrain runs data RUN --against OTHER`: per-feature distances of two runs' data."""
    out = [f"train data of {view.run.label} against {view.against.label} "
           "(L-infinity: categorical; Jensen-Shannon divergence: numeric)", ""]
    rows = [[d.feature, d.measure.label, f"{d.value:.4f}"]
            for d in sorted(view.distances, key=lambda d: -d.value)]
    out += _table(["feature", "measure", "distance"], rows) if rows else ["  no common features"]
    if view.only_in_run:
        out.append(f"  only in {view.run.label}: {', '.join(view.only_in_run)}")
    if view.only_in_against:
        out.append(f"  only in {view.against.label}: {', '.join(view.only_in_against)}")
    return "\n".join(out)


def render_comparison(view) -> str:
    """`retrain runs compare A B`: config differences, metrics, blessing rules, data."""
    a, b = view.a.label, view.b.label
    out = [f"A = {a} ({view.a.status.value}), B = {b} ({view.b.status.value})", "", "config"]
    out += (_table(["field", "A", "B"], [[c.path, _value(c.a), _value(c.b)]
                                         for c in view.config_changes])
            if view.config_changes else ["  the same"])
    out += ["", "metrics"]
    out += (_table(["metric", "A", "B", "B - A"],
                   [[m.name, _value(m.a), _value(m.b),
                     "-" if m.delta is None else f"{m.delta:+.4g}"] for m in view.metrics])
            if view.metrics else ["  neither run has metrics"])
    out += ["", f"blessing: A {_value(view.blessed[0])}, B {_value(view.blessed[1])}"]
    for label, rules in (("A", view.rules_a), ("B", view.rules_b)):
        out += [f"  {label} {'ok  ' if r.get('passed') else 'FAIL'} {r.get('message')}"
                for r in rules]
    out += ["", "data"]
    if view.data is None:
        out.append(f"  {view.data_note}")
    else:
        out += ["  " + line for line in render_distances(view.data).splitlines()]
    return "\n".join(out)
