"""Training epochs as the run view shows them: one table row per epoch.

The same rows make the live epochs table artifact (updated as each epoch ends) and the
training curve in the run's summary, so both read alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from retrain.domain.refs import EpochMetrics

# Shown first, in this order, when the Keras logs have them; other metrics follow by name.
LEADING = ("loss", "val_loss")


def epoch_row(record: EpochMetrics) -> dict[str, float | int]:
    """`{"epoch": 3, "loss": …, "val_loss": …, <other metrics by name>, "seconds": …}`."""
    row: dict[str, float | int] = {"epoch": record.epoch}
    names = [name for name in LEADING if name in record.metrics]
    names += sorted(name for name in record.metrics if name not in LEADING)
    row.update({name: round(record.metrics[name], 4) for name in names})
    row["seconds"] = round(record.seconds, 1)
    return row


def upsert_row(rows: Iterable[dict], row: dict) -> list[dict]:
    """`rows` with `row` in its epoch's place (a resumed or retried epoch replaces its row),
    ordered by epoch."""
    kept = {int(existing["epoch"]): existing for existing in rows if "epoch" in existing}
    kept[int(row["epoch"])] = row
    return [kept[epoch] for epoch in sorted(kept)]


def markdown_table(rows: list[dict]) -> list[str]:
    """The rows as markdown table lines (columns: the union, in first-seen order)."""
    if not rows:
        return []
    columns: list[str] = []
    for row in rows:
        columns += [name for name in row if name not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(name)) for name in columns) + " |" for row in rows]
    return lines


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)
