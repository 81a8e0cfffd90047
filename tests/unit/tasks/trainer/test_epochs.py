"""Per-epoch records: durable beside the model, and handed to sinks the platform attaches."""

from __future__ import annotations

from retrain.domain.refs import EpochMetrics
from tasks.trainer.epochs import epoch_sinks, publish, read_epochs


class _Collect:
    def __init__(self) -> None:
        self.records: list[EpochMetrics] = []

    def on_epoch(self, record: EpochMetrics) -> None:
        self.records.append(record)


def _record(epoch: int) -> EpochMetrics:
    return EpochMetrics(epoch=epoch, total_epochs=3, seconds=1.5,
                        metrics={"loss": 1.0 / epoch, "val_recall_at_100": 0.1 * epoch})


def test_epochs_are_appended_in_order_and_read_back(tmp_path):
    assert read_epochs(str(tmp_path)) == []
    for epoch in (1, 2, 3):
        publish(_record(epoch), str(tmp_path))
    records = read_epochs(str(tmp_path))
    assert [r.epoch for r in records] == [1, 2, 3]
    assert records[2].metrics["val_recall_at_100"] == 0.30000000000000004


def test_sinks_receive_each_epoch_only_while_attached(tmp_path):
    sink = _Collect()
    with epoch_sinks(sink):
        publish(_record(1), str(tmp_path))
        publish(_record(2), str(tmp_path))
    publish(_record(3), str(tmp_path))
    assert [r.epoch for r in sink.records] == [1, 2]
    assert len(read_epochs(str(tmp_path))) == 3
