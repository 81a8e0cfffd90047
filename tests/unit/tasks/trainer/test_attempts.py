"""The Trainer's attempt policy: GPU fallback, resume budget, no blind retries."""

from __future__ import annotations

import pytest

from retrain.domain.recommender import GpuConfig, GpuOption
from retrain.domain.refs import TrainerAttempt
from tasks.trainer.attempts import Action, Observation, classify, next_step

# Seed 003's planned order: 4×T4 → 4×V100 → 4×L4 → 2×T4.
GPU = GpuConfig(
    enabled=True, count=4, type="nvidia-tesla-t4", deployment="gpu-trainer/kubernetes",
    fallback=[GpuOption(type="nvidia-tesla-v100", count=4),
              GpuOption(type="nvidia-l4", count=4), GpuOption(type="nvidia-tesla-t4", count=2)],
    unschedulable_wait_seconds=300, infrastructure_retries=2,
)


def ended(number: int, option: GpuOption, outcome: str, reason: str = "") -> TrainerAttempt:
    return TrainerAttempt(number=number, gpu_type=option.type, gpu_count=option.count,
                          outcome=outcome, reason=reason or None)


def test_options_are_tried_in_order_until_one_schedules() -> None:
    options = GPU.options
    assert [o.label() for o in options] == [
        "4×nvidia-tesla-t4", "4×nvidia-tesla-v100", "4×nvidia-l4", "2×nvidia-tesla-t4"]
    done: list[TrainerAttempt] = []
    for expected in options:
        step = next_step(GPU, done)
        assert step.action is Action.SUBMIT and step.option == expected
        done.append(ended(len(done) + 1, expected, "unschedulable", "0/3 nodes are available"))
    step = next_step(GPU, done)
    assert step.action is Action.GIVE_UP
    assert "no GPU option could be scheduled within 300 s" in step.reason
    assert "#4 on 2×nvidia-tesla-t4: unschedulable (0/3 nodes are available)" in step.reason


def test_interruptions_resume_on_the_same_option_within_the_budget() -> None:
    v100 = GPU.options[1]
    done = [ended(1, GPU.options[0], "unschedulable"), ended(2, v100, "interrupted", "evicted")]
    assert next_step(GPU, done).option == v100
    done.append(ended(3, v100, "interrupted", "preempted"))
    assert next_step(GPU, done).option == v100  # 2 retries allowed
    done.append(ended(4, v100, "interrupted", "node lost"))
    step = next_step(GPU, done)
    assert step.action is Action.GIVE_UP
    assert "interrupted 3 times; infrastructure_retries (2) used up" in step.reason


def test_a_failure_in_training_code_is_not_retried() -> None:
    step = next_step(GPU, [ended(1, GPU.options[0], "failed", "ValueError: bad feature")])
    assert step.action is Action.GIVE_UP
    assert "ValueError: bad feature" in step.reason and "not retried" in step.reason
    assert next_step(GPU, [ended(1, GPU.options[0], "succeeded")]).action is Action.DONE


def observe(state: str, *, waiting: float = 0.0, unschedulable: float | None = None,
            has_run: bool = False, message: str | None = None) -> Observation:
    return Observation(state_type=state, state_message=message, has_run=has_run,
                       waiting_seconds=waiting, unschedulable_seconds=unschedulable,
                       unschedulable_reason="Unschedulable.NodeAffinity")


@pytest.mark.parametrize("observation, expected", [
    (observe("PENDING", waiting=400, unschedulable=299), None),
    (observe("PENDING", waiting=400, unschedulable=300), "unschedulable"),
    (observe("PENDING", waiting=4000), None),  # pulling a big image is not unschedulable
    (observe("SCHEDULED", waiting=299), None),
    (observe("SCHEDULED", waiting=300), "failed"),  # no worker: another GPU would not help
    (observe("RUNNING", waiting=4000, unschedulable=4000), None),
    (observe("PENDING", unschedulable=4000, has_run=True), None),
    (observe("COMPLETED"), "succeeded"),
    (observe("FAILED", message="RuntimeError: GPUs requested"), "failed"),
    (observe("CRASHED", message="Pod was preempted"), "interrupted"),
    (observe("CANCELLED"), "cancelled"),
])
def test_classify(observation: Observation, expected: str | None) -> None:
    decided = classify(observation, 300)
    assert (decided[0] if decided else None) == expected


def test_unschedulable_reason_names_the_wait_and_the_diagnosis() -> None:
    outcome, reason = classify(observe("PENDING", unschedulable=301.2), 300)
    assert outcome == "unschedulable"
    assert reason == "pod unschedulable for 301 s: Unschedulable.NodeAffinity"


def test_fallback_needs_gpus_and_a_deployment() -> None:
    with pytest.raises(ValueError, match="fallback: GPU options need gpu.enabled"):
        GpuConfig(deployment="gpu-trainer/kubernetes", fallback=[GpuOption(count=2)])
    with pytest.raises(ValueError, match="set gpu.deployment"):
        GpuConfig(enabled=True, fallback=[GpuOption(count=2)])
    with pytest.raises(ValueError, match="deployment"):
        GpuConfig(enabled=True, deployment="no-slash")


def test_scheduling_fields_are_not_in_the_trainer_cache_key() -> None:
    from tasks.trainer.core import cache_inputs

    spec = {"gpu": GPU.model_dump(mode="json"), "checkpoint_dir": "/x", "training": {}}
    moved = {**spec, "gpu": {**spec["gpu"], "fallback": [], "deployment": None,
                             "unschedulable_wait_seconds": 5}, "checkpoint_dir": None}
    assert cache_inputs(spec) == cache_inputs(moved)
    assert cache_inputs(spec) != cache_inputs({**spec, "gpu": {**spec["gpu"], "count": 2}})


def test_a_trainer_pod_with_other_code_refuses_to_train(tmp_path) -> None:
    """The attempt writes into the training flow's Trainer directory; a trainer image whose
    code gives another fingerprint must not put a model there under the wrong cache key."""
    from tasks.shared.caching import StagePlan
    from retrain.domain.examples import recommender_config
    from retrain.domain.refs import ArtifactRef, StageOutput
    from tasks.shared.stage import StageError
    from tasks.trainer.request import TrainerRequest
    from tasks.trainer.task import train_attempt

    config = recommender_config(tmp_path, "ranking", pipeline_root=str(tmp_path / "root"))
    def output(stage: str, key: str, type_name: str) -> StageOutput:
        return StageOutput(stage=stage, fingerprint=stage.lower() * 8, artifacts={
            key: ArtifactRef(type_name=type_name, uri=str(tmp_path / stage))})
    request = TrainerRequest(
        config=config, transform=output("Transform", "transform_graph", "TransformGraph"),
        schema=output("SchemaGen", "schema", "Schema"),
        plan=StagePlan.for_stage(config, "Trainer", "0" * 64), gpu=GpuOption(),
    )
    with pytest.raises(StageError, match=r"this trainer's code differs from the training "
                       r"flow's \(Trainer fingerprint \w+ here, 000000000000 there\)"):
        train_attempt.fn(request)
    assert not (tmp_path / "root").exists()  # nothing written
