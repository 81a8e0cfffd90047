"""TFRS models built from config, through the whole flow with real TFX executors.

For each model type the flow trains, evaluates (recall@K over the corpus, RMSE/MAE),
blesses by the rules (the trivial baseline among them: a ranking model beats the train-mean
rating, a retrieval model the most popular products) and pushes a SavedModel that answers a
raw-feature request. For retrieval, a worse model is refused against the champion, then
force-blessed with a recorded reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow]

IN_MEMORY_BEAM = {"args": ["--direct_running_mode=in_memory"]}


def _config(data: Path, root: Path, model_type: str, **overrides):
    from retrain.domain.examples import recommender_config

    values = {
        "pipeline_root": str(root / "pipelines"),
        "pusher": {"serving_base": str(root / "serving")},
        "training": {"epochs": 3, "batch_size": 128, "learning_rate": 0.1,
                     "epoch_eval_rows": 256},
        "beam": IN_MEMORY_BEAM,
    }
    return recommender_config(data, model_type, **{**values, **overrides})


def _load_serving(uri: str):
    from retrain.adapters.tfx import prepare_tf_environment

    prepare_tf_environment()
    import tensorflow as tf

    return tf.saved_model.load(uri)


def _request(names: list[str]) -> dict:
    import tensorflow as tf

    row = {"buyer_id": "B000001", "city": "city_00", "timestamp": 1_704_110_400,
           "product_id": "P000003", "category": "cat_01"}
    # a raw-feature request: one tensor per column, with the schema's dtypes
    return {name: tf.constant([row[name]], dtype=tf.int64 if name == "timestamp" else tf.string)
            for name in names}


def _data_ids(data: Path, column: str) -> set[str]:
    import csv

    ids: set[str] = set()
    for path in data.glob("*.csv"):
        with path.open() as handle:
            ids.update(row[column] for row in csv.DictReader(handle))
    return ids


@pytest.fixture(scope="module")
def interactions(session_dir: Path) -> Path:
    """20,000 synthetic interactions (about 32 train rows per buyer): enough for a two-tower
    model to learn more than product popularity, which 2,000 rows are not (recall@100 0.778
    against the most popular products' 0.781, where 20,000 give 0.879 against 0.809)."""
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate

    return generate(SyntheticConfig(rows=20_000, seed=7),
                    session_dir / "data" / "recommenders").out_dir


@pytest.fixture(scope="module")
def runs(prefect_harness, interactions, tmp_path_factory):
    """One first run per model type (each is the first of its model name)."""
    from flows.training_pipeline import training_pipeline

    root = tmp_path_factory.mktemp("recommenders")
    results = {}
    for model_type in ("retrieval", "ranking", "multitask"):
        config = _config(interactions, root, model_type)
        state = training_pipeline(config, return_state=True)
        assert state.is_completed(), state.message
        results[model_type] = (config, state.result(), str(state.state_details.flow_run_id))
    return root, results


@pytest.mark.parametrize("model_type", ["retrieval", "ranking", "multitask"])
def test_first_run_is_blessed_by_thresholds_only_and_pushed(runs, model_type):
    _, results = runs
    config, summary, _ = results[model_type]
    assert summary.outcome == "pushed" and summary.push.registered_version == "1"
    rules = {rule.rule: rule for rule in summary.blessing.rules}
    assert rules["first_run"].passed and "no baseline" in rules["first_run"].message
    assert "max_regression" not in rules and "relative_tolerance" not in rules
    expected = {"retrieval": {"recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100"},
                "ranking": {"rmse", "mae"}}
    wanted = expected.get(model_type, expected["retrieval"] | expected["ranking"])
    assert wanted <= set(summary.metrics)
    assert summary.metrics["example_count"] == summary.rows["eval"]


@pytest.mark.parametrize(("model_type", "metric", "better"),
                         [("ranking", "rmse", "<="), ("retrieval", "recall_at_100", ">=")])
def test_models_beat_their_trivial_baselines(runs, model_type, metric, better):
    """The trivial-baseline rule, and the floor the summary shows beside each metric."""
    _, results = runs
    _, summary, _ = results[model_type]
    (rule,) = [r for r in summary.blessing.rules if r.rule == "trivial_baseline"]
    assert rule.passed and rule.metric == metric, rule.message
    assert rule.value == summary.metrics[metric]
    # beaten by the default margin: 5% of the trivial predictor's distance to a perfect score
    perfect = 0.0 if better == "<=" else 1.0
    assert rule.threshold == pytest.approx(
        rule.trivial_value + 0.05 * (perfect - rule.trivial_value))
    assert (rule.value <= rule.threshold) if better == "<=" else (rule.value >= rule.threshold)
    predictor = "train-mean" if model_type == "ranking" else "most-popular-items"
    assert f"beats the {predictor} predictor's" in rule.message
    # the summary puts every metric with a floor beside it (recall@5 … @100 for retrieval)
    floors = {f.metric: f for f in summary.floors}
    assert floors[metric].value == rule.trivial_value
    assert floors[metric].predictor == f"{predictor} predictor"
    if model_type == "retrieval":
        assert {"recall_at_5", "recall_at_10", "recall_at_50", "recall_at_100"} <= set(floors)
        assert floors["recall_at_10"].value < floors["recall_at_100"].value
    from tasks.shared.summary import render_text

    (line,) = [line for line in render_text(summary).splitlines() if "floor:" in line]
    assert f"{metric} {summary.metrics[metric]:.4f} vs {rule.trivial_value:.4f}" in line
    assert line.endswith(f"({predictor} predictor)")


def test_trainer_records_every_epoch(runs):
    from tasks.trainer.epochs import read_epochs

    root, results = runs
    config, _, _ = results["retrieval"]
    run_dir = next((Path(config.pipeline_root) / config.model_name / "Trainer").glob("*/model_run"))
    epochs = read_epochs(str(run_dir))
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert all({"loss", "val_loss", "val_recall_at_100"} <= set(e.metrics) for e in epochs)
    assert epochs[-1].metrics["loss"] < epochs[0].metrics["loss"]
    # the same epochs, as they finished, in the state store
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        record = runs.run_for_flow_run(session, results["retrieval"][2])
        assert [(e.epoch, e.metrics["loss"]) for e in record.epochs] == [
            (e.epoch, e.metrics["loss"]) for e in epochs]
        assert (record.current_epoch, record.total_epochs) == (3, 3)


def _artifacts(flow_run_id: str) -> dict[str, object]:
    """The flow run's artifacts in the Prefect API, by key (or by type for unkeyed ones)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from retrain.adapters.prefect import prefect_client

    with prefect_client() as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {artifact.key or artifact.type: artifact for artifact in found}


def test_run_view_shows_the_epochs_table_progress_and_training_curve(runs):
    """What the Prefect UI shows of training: a table artifact with one row per epoch
    (updated as each ended), the progress artifact at the end, and the summary's curve."""
    import json

    from tasks.trainer.epochs import read_epochs

    _, results = runs
    config, summary, flow_run_id = results["retrieval"]
    artifacts = _artifacts(flow_run_id)
    table = artifacts[f"{config.model_name}-epochs"]
    rows = json.loads(table.data)
    recorded = summary.epochs
    assert [row["epoch"] for row in rows] == [1, 2, 3] == [e.epoch for e in recorded]
    assert list(rows[0])[:3] == ["epoch", "loss", "val_loss"] and list(rows[0])[-1] == "seconds"
    assert rows[2]["val_recall_at_100"] == round(recorded[2].metrics["val_recall_at_100"], 4)
    assert table.description == "Trainer epochs: 3 of 3 done"
    assert artifacts["progress"].data == 100.0
    markdown = artifacts[f"{config.model_name}-run-summary"].data
    assert "## Training curve" in markdown and "3 of 3 epochs." in markdown
    curve = markdown.split("## Training curve")[1].split("## Evaluation")[0]
    assert len([line for line in curve.splitlines() if line.startswith("| 3 |")]) == 1
    # a first run has no champion: the comparison column says so
    assert "| recall_at_100 | " in markdown and "| — |" in markdown


@pytest.mark.parametrize(("model_type", "metric", "pick"), [
    ("retrieval", "val_recall_at_100", max), ("ranking", "val_rmse", min)])
def test_the_best_epoch_is_exported_and_named(runs, model_type, metric, pick):
    """training.keep_best_epoch (on by default): the model exported is the epoch with the
    best validation metric; the model's recommender.json, the summary and the record say so."""
    import json

    _, results = runs
    config, summary, flow_run_id = results[model_type]
    best = pick(summary.epochs, key=lambda e: e.metrics[metric])
    assert (summary.best_epoch, summary.best_epoch_metric) == (best.epoch, metric)
    facts = json.loads(next((Path(config.pipeline_root) / config.model_name / "Trainer")
                            .glob("*/model/recommender.json")).read_text())
    assert facts["best_epoch"] == best.epoch and facts["best_epoch_metric"] == metric
    assert facts["best_epoch_value"] == pytest.approx(best.metrics[metric])
    markdown = _artifacts(flow_run_id)[f"{config.model_name}-run-summary"].data
    assert f"Exported: epoch {best.epoch}, the best by {metric}." in markdown
    from retrain.services.catalog import run_detail

    detail = run_detail(_record_id(flow_run_id))
    assert (detail.best_epoch, detail.best_epoch_metric) == (best.epoch, metric)


def test_retrieval_model_answers_top_k_product_ids_for_a_buyer(runs, interactions):
    _, results = runs
    _, summary, _ = results["retrieval"]
    model = _load_serving(summary.push.serving_uri)
    answer = model.signatures["serving_default"](**_request(["buyer_id", "city", "timestamp"]))
    ids = [x.decode() for x in answer["candidate_ids"].numpy()[0]]
    scores = answer["scores"].numpy()[0]
    products = _data_ids(interactions, "product_id")
    assert len(ids) == min(100, len(products)) and len(set(ids)) == len(ids)
    assert set(ids) <= products
    assert np.all(np.diff(scores) <= 1e-6), "top-K comes best first"


def test_retrieval_push_publishes_a_model_card_and_a_valid_stac_mlm_item(runs):
    """Beside the pushed SavedModel and in the push's MLflow run, checked field by field;
    the item validates against the vendored MLM schema (offline)."""
    import json

    from retrain.adapters import mlflow_registry as registry
    from retrain.adapters.stac_mlm import validate_stac_item

    _, results = runs
    config, summary, flow_run_id = results["retrieval"]
    push = summary.push
    assert push.publication_error is None
    assert push.model_card_uri == f"{push.serving_uri}/model_card.md"
    card = Path(push.model_card_uri).read_text()
    assert card.startswith(f"# {config.model_name} v1")
    for line in ("## Signatures", "### serving_default", "| output | candidate_ids | string |",
                 "## Hyperparameters", "| model.output_dim | 32 |", "| training.epochs | 3 |",
                 "## Training data", f"`{config.input.uri}`", "## Metrics against the champion",
                 "First version: no champion", "| recall_at_100 | higher |",
                 "## Blessing rules", "no baseline", "most-popular-items predictor",
                 "- **Replaces:** nothing (first version)"):
        assert line in card, (line, card)
    for name in ("train", "eval"):
        assert f"| {name} | {summary.rows[name]:,} |" in card, card
    item = json.loads(Path(push.stac_item_uri).read_text())
    validate_stac_item(item)
    props = item["properties"]
    assert item["id"] == f"{config.model_name}-v1"
    assert any("/mlm/v1.4.0/" in uri for uri in item["stac_extensions"])
    assert props["mlm:name"] == config.model_name
    assert props["mlm:framework"] == "TensorFlow"
    assert props["mlm:tasks"] == ["similarity-search"]
    assert props["retrain:registered_version"] == "1"
    assert props["retrain:serving_version"] == push.version
    assert props["retrain:flow_run_id"] == flow_run_id
    assert props["retrain:mlflow_run_id"] == push.mlflow_run_id
    assert props["retrain:champion_replaced"] is None
    inputs = {i["name"] for i in props["mlm:input"]}
    assert {"buyer_id", "city", "timestamp"} <= inputs
    assert {o["name"] for o in props["mlm:output"]} >= {"candidate_ids", "scores"}
    assert item["assets"]["model"]["href"] == push.serving_uri
    assert "mlm:model" in item["assets"]["model"]["roles"]
    assert item["assets"]["model-card"]["href"] == push.model_card_uri
    logged = {a.path for a in registry.client().list_artifacts(push.mlflow_run_id,
                                                               "publication")}
    assert logged == {"publication/model_card.md", "publication/stac_item.json"}


def test_retrieval_model_dir_has_query_candidate_models_and_index(runs):
    _, results = runs
    config, _, _ = results["retrieval"]
    model_dir = next((Path(config.pipeline_root) / config.model_name / "Trainer").glob("*/model"))
    index = _load_serving(str(model_dir / "index"))
    query = _load_serving(str(model_dir / "query_model"))
    corpus = index.signatures["candidate_corpus"]()
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["buyer_id"].bytes_list.value.append(b"B000001")
    example.features.feature["city"].bytes_list.value.append(b"city_00")
    example.features.feature["timestamp"].int64_list.value.append(1_704_110_400)
    embedding = query.signatures["query_embedding"](
        examples=tf.constant([example.SerializeToString()]))["embedding"]
    found = index.signatures["search"](embedding=embedding)
    # the index's top-K equals an exact brute-force ranking of the exported corpus
    scores = embedding.numpy() @ corpus["embeddings"].numpy().T
    best = corpus["candidate_ids"].numpy()[np.argsort(-scores[0])[:5]]
    assert list(found["candidate_ids"].numpy()[0][:5]) == list(best)


@pytest.mark.parametrize("model_type", ["ranking", "multitask"])
def test_ranking_models_answer_a_score_for_a_buyer_and_product(runs, model_type):
    _, results = runs
    _, summary, _ = results[model_type]
    model = _load_serving(summary.push.serving_uri)
    columns = ["buyer_id", "city", "timestamp", "product_id", "category"]
    signature = "serving_default" if model_type == "ranking" else "rank"
    score = model.signatures[signature](**_request(columns))["score"].numpy()
    assert score.shape == (1,) and 0.0 < score[0] < 6.0  # ratings are 1..5


def test_worse_model_is_refused_then_force_blessed_with_its_reason(runs, interactions):
    """Against the champion: a 2% relative tolerance refuses a much weaker model."""
    from flows.training_pipeline import training_pipeline
    from retrain.adapters import mlflow_registry as registry

    root, results = runs
    # The trivial-baseline rule is off here: this is about the champion (it has its own test).
    weak = {"training": {"epochs": 1, "batch_size": 128, "learning_rate": 0.0001,
                         "epoch_eval_rows": 0},
            "evaluator": {"metrics": [{"class_name": "recall_at_10", "lower_bound": 0.0,
                                       "relative_tolerance": 0.02}],
                          "trivial_baseline": {"enabled": False}}}
    config = _config(interactions, root, "retrieval", **weak)
    state = training_pipeline(config, return_state=True)
    assert state.is_completed() and state.name == "NotBlessed"
    summary = state.result()
    failed = [rule for rule in summary.blessing.rules if not rule.passed]
    assert [rule.rule for rule in failed] == ["relative_tolerance"]
    assert summary.blessing.baseline_version == "1"
    assert not summary.push.pushed
    # the summary puts each metric beside the champion's, with the delta and its direction
    (recall,) = [c for c in summary.comparison if c.metric == "recall_at_10"]
    assert recall.champion == summary.blessing.baseline_metrics["recall_at_10"]
    assert recall.verdict == "worse" and recall.delta < 0
    markdown = _artifacts(str(state.state_details.flow_run_id))[
        f"{config.model_name}-run-summary"].data
    assert "| metric | value | champion (v1) | delta | |" in markdown
    assert f"| recall_at_10 | {recall.value:.4f} | {recall.champion:.4f} | {recall.delta:+.4f} " \
        "| worse |" in markdown
    assert registry.champion(config.model_name).version == "1"
    assert _record(state).status == "not_blessed" and _record(state).blessed is False

    forced = weak | {"evaluator": {**weak["evaluator"],
                                   "force_bless": {"reason": "catalogue migration, INC-42"}}}
    config = _config(interactions, root, "retrieval", **forced)
    state = training_pipeline(config, return_state=True)
    assert state.is_completed() and state.name != "NotBlessed", state.message
    summary = state.result()
    assert summary.blessing.forced_reason == "catalogue migration, INC-42"
    assert any(not rule.passed for rule in summary.blessing.rules), "failures stay on record"
    assert summary.push.pushed and summary.push.registered_version == "2"
    version = registry.client().get_model_version(config.model_name, "2")
    assert version.tags["retrain.forced_reason"] == "catalogue migration, INC-42"
    assert registry.champion(config.model_name).version == "2"
    record = _record(state)
    assert record.status == "completed" and record.forced_reason == "catalogue migration, INC-42"
    assert record.registered_version == "2"


def _record_id(flow_run_id: str) -> str:
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        return runs.run_for_flow_run(session, flow_run_id).id


def _record(state):
    """The state store's record of a finished flow run."""
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        return runs.run_for_flow_run(session, str(state.state_details.flow_run_id))


def test_a_ranking_run_under_a_retrieval_models_name_is_not_pushed_in_its_place(runs, interactions):
    """A model name switched to another model type: the Evaluator does not compare with a
    champion of the other type (before, it failed on it: "gives no predictions: not a
    ranking model") and the run is not blessed, naming why and the way out."""
    from flows.training_pipeline import training_pipeline
    from retrain.adapters import mlflow_registry as registry

    root, results = runs
    name = results["retrieval"][0].model_name
    champion = registry.champion(name).version
    config = _config(interactions, root, "ranking", model_name=name,
                     training={"epochs": 1, "batch_size": 128, "learning_rate": 0.1,
                               "epoch_eval_rows": 0})
    state = training_pipeline(config, return_state=True)
    assert state.is_completed() and state.name == "NotBlessed", state.message
    summary = state.result()
    first = summary.blessing.rules[0]
    assert (first.rule, first.passed) == ("model_type", False)
    assert first.message.startswith(f"the champion (version {champion}) is a retrieval model "
                                    "and this one a ranking model: not compared")
    assert "rmse" in summary.metrics and not summary.push.pushed
    assert registry.champion(name).version == champion
