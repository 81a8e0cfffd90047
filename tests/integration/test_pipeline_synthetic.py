"""The whole training-pipeline flow on tiny synthetic data, with real TFX executors.

One run trains, blesses, pushes and registers; an identical re-run is served from the
stage cache in a fresh process that never imports TensorFlow; changing one stage's input
re-runs that stage and everything downstream, nothing upstream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

STAGES = [
    "ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
    "Transform", "Trainer", "Evaluator", "Pusher",
]


IN_MEMORY_BEAM = {"args": ["--direct_running_mode=in_memory"]}


def _config(data: Path, root: Path, **overrides):
    from retrain.domain.examples import rating_config

    values = {
        "pipeline_root": str(root / "pipelines"),
        "pusher": {"serving_base": str(root / "serving")},
        "trainer": {"train_steps": 100, "eval_steps": 10},
        "beam": IN_MEMORY_BEAM,
    }
    return rating_config(data, **{**values, **overrides})


@pytest.fixture(scope="module")
def first_run(prefect_harness, tiny_interactions, tmp_path_factory):
    """Run the flow once; every test in this module reads what it produced."""
    from flows.training_pipeline import training_pipeline

    root = tmp_path_factory.mktemp("synthetic-run")
    config = _config(tiny_interactions, root)
    state = training_pipeline(config, return_state=True)
    assert state.is_completed(), state.message
    return config, state.result(), root, state.state_details.flow_run_id


def _trainer_model_uris(config) -> list[str]:
    base = Path(config.pipeline_root) / config.model_name / "Trainer"
    return sorted(str(p / "model") for p in base.glob("*/model"))


def test_first_run_trains_blesses_and_pushes(first_run):
    config, summary, root, _ = first_run
    assert [t.stage for t in summary.stages] == STAGES
    assert all(t.state == "Completed" for t in summary.stages)
    assert summary.outcome == "pushed" and summary.blessed
    assert summary.baseline_model_uri is None  # first run: thresholds only
    assert sum(summary.rows.values()) == 2_000
    assert set(summary.rows) == {"train", "eval"}
    assert 0 < summary.metrics["mean_absolute_error"] <= 1.0
    assert summary.metrics["example_count"] == summary.rows["eval"]

    serving = Path(summary.push.serving_uri)
    assert serving.parent == root / "serving" / config.model_name
    assert (serving / "saved_model.pb").is_file()
    assert Path(summary.statistics_report).read_text().lstrip().startswith("<")


def test_pushed_model_is_registered_as_champion(first_run):
    from retrain.adapters import mlflow_registry as registry

    config, summary, _, _ = first_run
    champion = registry.champion(config.model_name)
    assert champion is not None
    assert champion.version == summary.push.registered_version == "1"
    assert champion.serving_uri == summary.push.serving_uri
    run = registry.client().get_run(summary.push.mlflow_run_id)
    assert run.data.params["trainer.train_steps"] == "100"
    assert run.data.metrics["mean_absolute_error"] == pytest.approx(
        summary.metrics["mean_absolute_error"]
    )
    artifacts = [a.path for a in registry.client().list_artifacts(run.info.run_id, "model")]
    assert "model/saved_model.pb" in artifacts


def test_progress_and_summary_artifacts_are_in_the_prefect_ui(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    config, summary, _, flow_run_id = first_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    by_type = {a.type: a for a in artifacts}
    assert by_type["progress"].data == 100.0
    assert "Pusher" in by_type["progress"].description
    markdown = by_type["markdown"].data
    assert "# Training run: `demo-ratings` — pushed" in markdown
    assert summary.push.serving_uri in markdown


def test_stage_outputs_end_with_a_completion_marker(first_run):
    config, summary, root, _ = first_run
    for stage in STAGES:
        markers = list((root / "pipelines" / config.model_name / stage).glob("*/_COMPLETE.json"))
        assert len(markers) == 1, stage
        assert json.loads(markers[0].read_text())["stage"] == stage


def _latest_record(model_name: str):
    from sqlalchemy import select

    from retrain.store.orm import RegisteredModel, TrainingRun
    from retrain.store.sessions import sessions

    session = sessions()()
    return session.execute(
        select(TrainingRun).join(RegisteredModel)
        .where(RegisteredModel.name == model_name)
        .order_by(TrainingRun.run_number.desc())
    ).scalars().first()


def test_the_run_is_recorded_in_the_state_store(first_run):
    from retrain.store import runs
    from retrain.store.sessions import sessions

    config, summary, _, flow_run_id = first_run
    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(flow_run_id))
        assert run is not None and run.status == "completed"
        assert run.config["model_name"] == config.model_name
        assert [(s.stage, s.status) for s in run.stages] == [(s, "completed") for s in STAGES]
        assert all(s.seconds is not None and s.seconds >= 0 for s in run.stages)
        assert run.registered_version == summary.push.registered_version
        assert run.metrics == summary.metrics and "mean_absolute_error" in run.metrics
        assert run.blessed is True and run.error_stage is None
        assert run.duration_seconds > 0 and run.current_stage == "Pusher"
        # CPU-only on the default machine (n1-standard-8, $0.38/h), billed for its duration
        assert run.cost == pytest.approx(0.38 * run.duration_seconds / 3600, rel=1e-6)


def test_identical_rerun_is_cached_without_importing_tensorflow(first_run, tiny_interactions):
    """A fresh process re-runs the same config: every stage Cached, TF never imported."""
    config, summary, root, _ = first_run
    script = (
        "import sys, json\n"
        "from prefect.testing.utilities import prefect_test_harness\n"
        "from flows.training_pipeline import training_pipeline\n"
        "from retrain.domain.config import PipelineConfig\n"
        "config = PipelineConfig.model_validate_json(sys.argv[1])\n"
        "with prefect_test_harness(server_startup_timeout=None):\n"
        "    s = training_pipeline(config)\n"
        "print(json.dumps({'states': [t.state for t in s.stages],\n"
        "                  'version': s.push.registered_version,\n"
        "                  'tf': 'tensorflow' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, config.model_dump_json(by_alias=True)],
        capture_output=True, text=True, env=dict(os.environ), timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["states"] == ["Cached"] * len(STAGES)
    assert outcome["version"] == summary.push.registered_version  # no duplicate version
    assert outcome["tf"] is False
    # the re-run is a run of its own in the store: next number, every stage cached
    record = _latest_record(config.model_name)
    assert record.run_number >= 2 and record.status == "completed"
    assert [s.status for s in record.stages] == ["cached"] * len(STAGES)


def test_changing_trainer_config_reruns_trainer_and_downstream_only(
    first_run, tiny_interactions
):
    from flows.training_pipeline import training_pipeline
    from retrain.adapters import mlflow_registry as registry

    config, summary, root, _ = first_run
    changed = _config(tiny_interactions, root, trainer={"train_steps": 101, "eval_steps": 10})
    second = training_pipeline(changed, return_state=True).result()
    states = {t.stage: t.state for t in second.stages}
    assert [states[s] for s in STAGES[:5]] == ["Cached"] * 5
    assert [states[s] for s in STAGES[5:]] == ["Completed"] * 3
    # The first run's model, the champion when this run started, was the baseline.
    first_model = registry.client().get_model_version(config.model_name, "1")
    assert second.baseline_model_uri == first_model.tags[registry.MODEL_URI_TAG]
    assert len(_trainer_model_uris(config)) == 2
