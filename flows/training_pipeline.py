"""The `training-pipeline` flow: the eight TFX stages, top to bottom."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Cancelled, Completed

from tasks.evaluator.task import evaluate_model, resolve_baseline
from tasks.example_gen.task import generate_examples
from tasks.example_validator.task import resolve_drift_baseline, validate_examples
from tasks.pusher.task import push_model
from tasks.schema_gen.task import generate_schema
from retrain.domain.config import PipelineConfig, with_overrides
from retrain.domain.overlap import OverlapAction
from retrain.settings import apply_gcs_connection
from tasks.shared.overlap_task import check_overlap
from tasks.shared.slot_task import check_schedule_slot
from tasks.shared.stores_task import check_stores
from tasks.shared.summary import RunSummary
from tasks.shared.summary_task import summarize_run
from tasks.shared.tracking import (
    on_flow_cancelled,
    on_flow_completion,
    on_flow_crashed,
    on_flow_failure,
    on_flow_running,
)
from tasks.statistics_gen.task import generate_statistics
from tasks.trainer.task import train_model
from tasks.transform.task import transform_examples


@flow(
    name="training-pipeline",
    log_prints=True,
    # The run record in the state store follows the flow run's state.
    on_running=[on_flow_running],
    on_completion=[on_flow_completion],
    on_failure=[on_flow_failure],
    on_crashed=[on_flow_crashed],
    on_cancellation=[on_flow_cancelled],
)
def training_pipeline(
    config: PipelineConfig, run_id: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunSummary:
    """Train, evaluate and (if blessed) push one model from raw data.

    `overrides` is a partial config merged over `config` (the deployment's, by default),
    e.g. {"training": {"epochs": 8}}: `prefect deployment run ... --param overrides=...`
    changes a few fields without restating the whole config.

    `run_id` names the state-store record this flow run fills (made beforehand by
    `retrain runs start/rerun`); empty, the run hooks create one. A run of a schedule's
    deployment that starts too long after its slot is skipped (`retrain/domain/schedule/rules.py`);
    while another run of the model is active, `config.overlap` says whether this one runs
    too, waits, or ends skipped or cancelled (`retrain/domain/overlap.py`).

    Args:
        config: The pipeline: data, features, model, training, evaluation and push settings.
        run_id: The state-store run record to fill (from `retrain runs start/rerun`);
            empty: a new record is made.
        overrides: Fields to change for this run only, merged over `config`, e.g.
            {"training": {"epochs": 8}}; the record keeps the merged config.
    """
    config = with_overrides(config, overrides)
    check_stores(config)  # in a container (a pod): nothing kept on its own disk
    apply_gcs_connection()  # RETRAIN_GCS_BLOCK's key, project and endpoint, if set
    slot = check_schedule_slot()
    if slot.skip:
        return Completed(name="Skipped", message=slot.reason)
    overlap = check_overlap()  # config.overlap, while another run of the model is active
    if overlap.action is OverlapAction.SKIP:
        return Completed(name="Skipped", message=overlap.reason)
    if overlap.action is OverlapAction.CANCEL:
        return Cancelled(message=overlap.reason)
    examples = generate_examples(config)
    statistics = generate_statistics(config, examples)
    schema = generate_schema(config, statistics)
    drift_baseline = resolve_drift_baseline(config)  # the model's newest finished run
    validation = validate_examples(config, statistics, schema, drift_baseline)
    transform = transform_examples(config, examples, schema)
    trainer = train_model(config, transform, schema)
    baseline = resolve_baseline(config)
    evaluation = evaluate_model(config, examples, transform, trainer, schema, baseline)
    push = push_model(config, trainer, evaluation, statistics)
    summary = summarize_run(config, statistics, validation, trainer, evaluation, push)
    if not evaluation.blessed:
        # Not blessed is an outcome of its own, not a failure: nothing was pushed.
        return Completed(name="NotBlessed", message=push.reason, data=summary)
    return summary
