"""The posterior fit (`model.fit: posterior`) through the whole flow with real TFX executors:
the Trainer samples the factor model, records its progress per block of steps, exports the
samples as two towers the Evaluator scores like any retrieval model, and the Pusher pushes a
model that answers top-K products for a buyer. Too many distinct queries fail the Trainer
with one message that names the sizes, and nothing is pushed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow]

BEAM = {"args": ["--direct_running_mode=in_memory"]}
SAMPLER = {"warm_start_iterations": 200, "steps": 600, "burn_in": 200, "samples": 20,
           "records": 4}


@pytest.fixture(scope="module")
def interactions(session_dir: Path) -> Path:
    """20,000 planted interactions of 1,000 buyers and 300 products."""
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate

    return generate(SyntheticConfig(rows=20_000, buyers=1_000, products=300, seed=7),
                    session_dir / "data" / "posterior").out_dir


def _config(data: Path, root: Path, **overrides):
    from retrain.domain.config import deep_merge
    from retrain.domain.examples import POSTERIOR_RETRIEVAL, recommender_config

    values = {"model_name": "posterior-retrieval",
              "pipeline_root": str(root / "pipelines"),
              "pusher": {"serving_base": str(root / "serving")},
              "training": {"epoch_eval_rows": 1_000}, "beam": BEAM}
    deep_merge(values, json.loads(json.dumps(POSTERIOR_RETRIEVAL)))
    deep_merge(values, {"model": {"posterior": SAMPLER}})
    deep_merge(values, overrides)
    return recommender_config(data, "retrieval", **values)


@pytest.fixture(scope="module")
def run(prefect_harness, interactions, tmp_path_factory):
    from flows.training_pipeline import training_pipeline

    root = tmp_path_factory.mktemp("posterior")
    config = _config(interactions, root)
    state = training_pipeline(config, return_state=True)
    assert state.is_completed(), state.message
    return root, config, state.result(), str(state.state_details.flow_run_id)


def test_the_posterior_model_is_blessed_over_the_popular_floor_and_pushed(run):
    _, _, summary, _ = run
    assert summary.outcome == "pushed"
    (rule,) = [r for r in summary.blessing.rules if r.rule == "trivial_baseline"]
    assert rule.passed and rule.metric == "recall_at_100", rule.message
    assert summary.metrics["recall_at_100"] > rule.trivial_value + 0.05
    from tasks.shared.summary import render_markdown

    assert summary.fit == "posterior"
    assert ("4 of 4 blocks of Langevin steps (posterior fit: the model served is the mean of "
            "the samples kept).") in render_markdown(summary)


def test_the_trainer_records_each_block_of_steps_with_validation_recall(run):
    from retrain.store import runs
    from retrain.store.sessions import sessions
    from tasks.trainer.epochs import read_epochs

    _, config, _, flow_run_id = run
    run_dir = next((Path(config.pipeline_root) / config.model_name / "Trainer")
                   .glob("*/model_run"))
    blocks = read_epochs(str(run_dir))
    assert [b.epoch for b in blocks] == [1, 2, 3, 4]
    # 20 samples, one every 20 steps after the 200-step burn-in: none by step 150, then 5 …
    assert [b.metrics["samples"] for b in blocks] == [0, 5, 12, 20]
    assert all("val_recall_at_100" in b.metrics for b in blocks)
    with sessions()() as session:
        record = runs.run_for_flow_run(session, flow_run_id)
        assert (record.current_epoch, record.total_epochs) == (4, 4)


def test_the_model_dir_names_the_fit_and_serves_top_k_for_a_buyer(run, interactions):
    import tensorflow as tf

    _, config, summary, _ = run
    model_dir = next((Path(config.pipeline_root) / config.model_name / "Trainer")
                     .glob("*/model"))
    about = json.loads((model_dir / "recommender.json").read_text())
    assert (about["fit"], about["posterior_samples"]) == ("posterior", 20)
    assert 900 < about["distinct_queries"] <= 1_000  # one query per buyer with train rows
    serving = tf.saved_model.load(summary.push.serving_uri)
    answer = serving.signatures["serving_default"](
        buyer_id=tf.constant(["B000001"]), city=tf.constant(["city_00"]))
    ids = [x.decode() for x in answer["candidate_ids"].numpy()[0]]
    assert len(ids) == 100 and len(set(ids)) == 100 and all(i.startswith("P") for i in ids)
    assert np.all(np.diff(answer["scores"].numpy()[0]) <= 1e-6)


def test_a_query_per_row_is_refused_naming_the_sizes_and_nothing_is_pushed(
        prefect_harness, interactions, tmp_path):
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import RECOMMENDER_FEATURES

    # with the timestamp, each of the 16,000 train rows is its own query: 4.8M scores
    config = _config(interactions, tmp_path, features={"query": RECOMMENDER_FEATURES["query"]},
                     model={"posterior": {"max_cells": 1_000_000}})
    state = training_pipeline(config, return_state=True)
    assert state.is_failed()
    assert "Trainer failed: " in state.message, state.message
    assert "distinct queries × 300 candidates" in state.message, state.message
    assert "scores, over model.posterior.max_cells 1,000,000" in state.message
    assert "Leave per-row query features" in state.message
    assert not (tmp_path / "serving").exists()
