"""Epoch rows: what the live epochs table and the summary's training curve show."""

from __future__ import annotations

from retrain.domain.epochs import epoch_row, markdown_table, upsert_row
from retrain.domain.refs import EpochMetrics


def _epoch(n: int, loss: float, seconds: float = 12.34) -> EpochMetrics:
    return EpochMetrics(epoch=n, total_epochs=3, seconds=seconds, metrics={
        "val_recall_at_100": 0.51234567, "loss": loss, "val_loss": loss + 1,
        "regularization_loss": 0.0})


def test_row_leads_with_loss_and_validation_loss_and_ends_with_seconds():
    row = epoch_row(_epoch(2, 3.14159))
    assert list(row) == ["epoch", "loss", "val_loss", "regularization_loss",
                         "val_recall_at_100", "seconds"]
    assert row["epoch"] == 2 and row["loss"] == 3.1416 and row["val_recall_at_100"] == 0.5123
    assert row["seconds"] == 12.3


def test_a_repeated_epoch_replaces_its_row_and_rows_stay_in_epoch_order():
    rows = [epoch_row(_epoch(1, 5.0)), epoch_row(_epoch(2, 4.0))]
    # a Trainer resumed in a new pod re-trains epoch 2, then goes on to epoch 3
    rows = upsert_row(rows, epoch_row(_epoch(3, 2.0)))
    rows = upsert_row(rows, epoch_row(_epoch(2, 3.0)))
    assert [(row["epoch"], row["loss"]) for row in rows] == [(1, 5.0), (2, 3.0), (3, 2.0)]


def test_markdown_table_has_a_header_and_one_line_per_epoch():
    rows = [epoch_row(_epoch(1, 5.0)), epoch_row(_epoch(2, 4.25))]
    lines = markdown_table(rows)
    assert lines[0] == ("| epoch | loss | val_loss | regularization_loss | val_recall_at_100 "
                        "| seconds |")
    assert lines[2:] == ["| 1 | 5 | 6 | 0 | 0.5123 | 12.3 |",
                         "| 2 | 4.25 | 5.25 | 0 | 0.5123 | 12.3 |"]
    assert markdown_table([]) == []
