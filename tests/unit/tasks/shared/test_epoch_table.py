"""The run view's epochs table and Trainer progress, on a real (temporary) Prefect API."""

from __future__ import annotations

import json

from prefect import flow
from prefect.runtime import flow_run

from retrain.adapters.prefect import prefect_client
from retrain.domain.refs import EpochMetrics
from tasks.shared.progress import EpochTableSink, epochs_key, set_progress


@flow(name="epoch-table-test")
def _a_flow_run() -> str:
    return flow_run.get_id()


def _epoch(n: int, loss: float) -> EpochMetrics:
    return EpochMetrics(epoch=n, total_epochs=4, seconds=1.5,
                        metrics={"loss": loss, "val_loss": loss + 0.5, "val_rmse": loss / 2})


def _artifacts(run_id: str) -> dict:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client() as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {artifact.key or artifact.type: artifact for artifact in found}


def test_each_epoch_updates_one_table_and_the_progress_and_a_resumed_trainer_continues_it(
        prefect_harness, monkeypatch):
    run_id = _a_flow_run()
    set_progress(run_id, 62.5, "Transform completed (5/8 stages)")  # made by the flow process
    first = EpochTableSink(run_id, "My_Model")
    first.on_epoch(_epoch(1, 4.0))
    first.on_epoch(_epoch(2, 3.0))
    artifacts = _artifacts(run_id)
    assert set(artifacts) == {"progress", "my-model-epochs"} == {"progress", epochs_key("My_Model")}
    table = artifacts["my-model-epochs"]
    assert [row["epoch"] for row in json.loads(table.data)] == [1, 2]
    assert table.description == "Trainer epochs: 2 of 4 done"
    assert artifacts["progress"].data == 68.8  # Trainer is stage 6 of 8: (5 + 2/4) / 8
    assert artifacts["progress"].description == "Trainer: epoch 2 of 4 done"

    # another process (a resumed attempt in a new pod): same artifacts, epoch 2 trained again
    monkeypatch.setattr("tasks.shared.progress._artifact_ids", {})  # it knows no artifact ids
    resumed = EpochTableSink(run_id, "My_Model")
    resumed.on_epoch(_epoch(2, 2.5))
    resumed.on_epoch(_epoch(3, 2.0))
    artifacts = _artifacts(run_id)
    assert len(artifacts) == 2, "no second table or progress artifact"
    rows = json.loads(artifacts["my-model-epochs"].data)
    assert [(row["epoch"], row["loss"]) for row in rows] == [(1, 4.0), (2, 2.5), (3, 2.0)]
    assert rows[0] == {"epoch": 1, "loss": 4.0, "val_loss": 4.5, "val_rmse": 2.0, "seconds": 1.5}
    assert artifacts["progress"].data == 71.9
