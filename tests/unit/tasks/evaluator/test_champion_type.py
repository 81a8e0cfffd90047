"""A champion of another model type (a model name switched from retrieval to ranking): the
run is evaluated without comparing with it and is not pushed in its place, unless it is
force-blessed. Before, the Evaluator failed with "<champion dir> gives no predictions: not a
ranking model" on every run of the new type."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.domain.examples import recommender_config
from retrain.domain.refs import ArtifactRef, BaselineRef, Blessing, EvaluationOutput, RuleResult
from retrain.domain.stages import Stage
from tasks.evaluator.blessing import FIRST_RUN_MESSAGE
from tasks.evaluator.core import _hold_back, other_type


def _config(kind: str, **overrides):
    return recommender_config("/data", kind, **{"model_name": "switched", **overrides})


def _champion(model_type: str | None) -> BaselineRef:
    return BaselineRef(type_name="Model", uri="/root/switched/Trainer/abc/model", version="3",
                       model_type=model_type)


def _blessed_output(tmp_path: Path) -> EvaluationOutput:
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.ModelBlessing()
    artifact.uri = str(tmp_path / "blessing")
    (tmp_path / "blessing").mkdir()
    (tmp_path / "blessing" / "BLESSED").write_text("")
    artifact.set_int_custom_property("blessed", 1)
    rules = [RuleResult(metric="*", rule="first_run", passed=True, message=FIRST_RUN_MESSAGE),
             RuleResult(metric="rmse", rule="upper_bound", passed=True, message="rmse ok")]
    return EvaluationOutput(
        stage=Stage.EVALUATOR, fingerprint="f", blessed=True, metrics={"rmse": 0.5},
        baseline_model_uri=None,
        artifacts={"blessing": ArtifactRef.from_tfx(artifact)},
        blessing=Blessing(blessed=True, rules=rules))


@pytest.mark.parametrize("champion_type", [None, "ranking"])
def test_a_champion_of_the_same_or_an_unknown_type_is_compared_with(champion_type):
    assert other_type(_champion(champion_type), _config("ranking")) is None
    assert other_type(None, _config("ranking")) is None


def test_a_champion_of_another_type_is_named_with_the_way_out():
    message = other_type(_champion("retrieval"), _config("ranking"))
    assert message.startswith("the champion (version 3) is a retrieval model and this one a "
                              "ranking model: not compared, and not pushed in its place")
    assert "evaluator.force_bless" in message and "another model_name" in message


def test_it_is_not_blessed_and_the_pusher_sees_not_blessed(tmp_path):
    config = _config("ranking")
    mismatch = other_type(_champion("retrieval"), config)
    held = _hold_back(_blessed_output(tmp_path), mismatch, config)
    assert held.blessed is False and held.failed_checks == [mismatch]
    assert [(r.rule, r.passed) for r in held.blessing.rules] == [
        ("model_type", False), ("upper_bound", True)]  # not "first run": there is a champion
    assert sorted(p.name for p in (tmp_path / "blessing").iterdir()) == ["NOT_BLESSED"]


def test_force_bless_replaces_it_on_record(tmp_path):
    config = _config("ranking", evaluator={"force_bless": {"reason": "moving to ranking"}})
    mismatch = other_type(_champion("retrieval"), config)
    held = _hold_back(_blessed_output(tmp_path), mismatch, config)
    assert held.blessed is True
    assert held.blessing.rules[0].rule == "model_type" and held.blessing.rules[0].passed
    assert held.blessing.rules[0].message == (
        "the champion (version 3) is a retrieval model and this one a ranking model: "
        "replaced (forced)")
    assert sorted(p.name for p in (tmp_path / "blessing").iterdir()) == ["BLESSED"]


def test_the_champions_type_comes_from_the_run_that_registered_it():
    from retrain.services import lifecycle
    from retrain.services.serving import version_model_type
    from retrain.store.sessions import sessions

    with sessions().begin() as session:
        run = lifecycle.new_run(session, _config("retrieval", model_name="type-lookup"))
        run.registered_version = "3"
    assert version_model_type("type-lookup", "3") == "retrieval"
    assert version_model_type("type-lookup", "4") is None
    assert version_model_type("no-such-model", "3") is None
