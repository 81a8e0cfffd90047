"""Bad run config fails at validation, before any stage runs, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from retrain.domain.config import PipelineConfig

MODULE = str(Path(__file__).resolve().parents[4] / "synthetic" / "modules" / "rating_model.py")


def _valid(**overrides) -> dict:
    values = {
        "model_name": "ratings",
        "input": {"uri": "/data/interactions"},
        "transform": {"module_file": MODULE},
        "evaluator": {"label_key": "rating_xf"},
    }
    values.update(overrides)
    return values


def _error(values: dict) -> str:
    with pytest.raises(ValidationError) as info:
        PipelineConfig.model_validate(values)
    return str(info.value)


def test_valid_config_gets_defaults_from_settings(monkeypatch, tmp_path):
    from retrain.settings import get_settings

    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        config = PipelineConfig.model_validate(_valid())
    finally:
        get_settings.cache_clear()
    assert config.pipeline_root == str(tmp_path / "pipelines")
    assert config.pusher.serving_base == str(tmp_path / "serving")
    assert config.input.split.strategy == "hash"
    assert (config.input.split.train_buckets, config.input.split.eval_buckets) == (8, 2)
    assert config.trainer_module_file == MODULE
    assert "--direct_running_mode=multi_processing" in config.beam.args


def test_missing_required_sections_are_named():
    assert "input" in _error({"model_name": "ratings"})


def test_a_user_module_run_needs_its_module_and_label():
    message = _error({"model_name": "ratings", "input": {"uri": "/d"}})
    assert "transform.module_file is required unless a recommender `model` is set" in message
    message = _error(_valid(evaluator={}))
    assert "evaluator.label_key is required" in message


@pytest.mark.parametrize("name", ["Ratings", "has space", "", "x" * 64, "-lead"])
def test_bad_model_name(name):
    assert "model_name" in _error(_valid(model_name=name))


def test_unknown_field_is_refused():
    assert "trainer.epochz" in _error(_valid(trainer={"epochz": 3})).replace("\n", ".")


def test_module_file_that_does_not_exist():
    message = _error(_valid(transform={"module_file": "/nope/module.py"}))
    assert "transform.module_file" in message and "/nope/module.py" in message


def test_time_holdout_needs_column_and_days():
    message = _error(_valid(input={"uri": "/d", "split": {"strategy": "time_holdout"}}))
    assert "split.timestamp_column" in message and "split.holdout_days" in message


def test_bigquery_needs_a_query_and_files_need_a_uri():
    assert "input.query" in _error(_valid(input={"format": "bigquery"}))
    assert "input.uri" in _error(_valid(input={"format": "parquet"}))


@pytest.mark.parametrize(
    "section, value, field",
    [
        ("trainer", {"train_steps": 0}, "train_steps"),
        ("input", {"uri": "/d", "split": {"eval_buckets": 0}}, "eval_buckets"),
        ("evaluator", {"label_key": "y", "metrics": [{"class_name": "AUC", "max_regression": -1}]},
         "max_regression"),
    ],
)
def test_out_of_range_numbers(section, value, field):
    assert field in _error(_valid(**{section: value}))


def test_config_round_trips_through_json_with_the_schema_alias(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("")
    config = PipelineConfig.model_validate(_valid(schema={"schema_file": str(schema)}))
    again = PipelineConfig.model_validate_json(config.model_dump_json(by_alias=True))
    assert again == config
    assert again.schema_.schema_file == str(schema)


def test_overrides_change_only_the_fields_they_name():
    from retrain.domain.config import with_overrides
    from retrain.domain.examples import recommender_config

    base = recommender_config("/data", "ranking")
    changed = with_overrides(base, {"training": {"epochs": 8}, "gpu": {"enabled": True}})
    assert changed.training.epochs == 8 and changed.gpu.enabled is True
    assert changed.training.batch_size == base.training.batch_size  # merged, not replaced
    assert changed.model_copy(update={"training": base.training, "gpu": base.gpu}) == base
    assert with_overrides(base, None) is base


def test_bad_overrides_are_named_like_any_bad_config():
    from retrain.domain.config import with_overrides
    from retrain.domain.examples import recommender_config

    base = recommender_config("/data", "ranking")
    with pytest.raises(ValidationError, match=r"training\.epochs\n.*greater than or equal to 1"):
        with_overrides(base, {"training": {"epochs": 0}})
    with pytest.raises(ValidationError, match=r"training\.epoch\n.*Extra inputs are not permitted"):
        with_overrides(base, {"training": {"epoch": 3}})


@pytest.mark.parametrize(
    ("data", "beam_args", "streaming"),
    [
        ({}, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
        ({}, ["--runner=DirectRunner"], True),
        ({}, ["--runner=DataflowRunner", "--project=p"], False),
        ({}, ["--runner", "FlinkRunner"], False),
        ({"engine": "beam"}, ["--direct_running_mode=in_memory"], False),
        ({"engine": "streaming"}, ["--runner=SparkRunner"], True),
    ],
)
def test_the_data_path_follows_the_engine_and_the_beam_runner(data, beam_args, streaming):
    config = PipelineConfig.model_validate(_valid(data=data, beam={"args": beam_args}))
    assert config.streaming is streaming


def test_data_settings_are_validated_by_name():
    assert "data.engine" in _error(_valid(data={"engine": "spark"}))
    assert "data.unit_mb" in _error(_valid(data={"unit_mb": 0}))
    assert "transform.analysis_rows" in _error(_valid(transform={"module_file": MODULE,
                                                                 "analysis_rows": 10}))
