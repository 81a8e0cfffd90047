"""The champion history a rollback walks back through, and TF Serving's version policy."""

from __future__ import annotations

import pytest

from retrain.domain.serving import (
    ChampionStep,
    ModelAction,
    ServedModel,
    VersionPolicy,
    numeric_versions,
    previous_champions,
    rollback_target,
    selected_versions,
)

PUSHED, DEPLOYED, UNDEPLOYED, ROLLED_BACK = (ModelAction.PUSHED, ModelAction.DEPLOYED,
                                             ModelAction.UNDEPLOYED, ModelAction.ROLLED_BACK)


def step(action, version, previous):
    return ChampionStep(action=action, version=version, previous_version=previous)


PUSHES = [step(PUSHED, "1", None), step(PUSHED, "2", "1"), step(PUSHED, "3", "2")]


def test_a_rollback_returns_to_the_champion_the_last_push_replaced():
    assert rollback_target(PUSHES, ["1", "2", "3"]) == "2"


def test_successive_rollbacks_walk_further_back_then_run_out():
    history = PUSHES + [step(ROLLED_BACK, "2", "3")]
    assert rollback_target(history, ["1", "2", "3"]) == "1"
    history += [step(ROLLED_BACK, "1", "2")]
    assert rollback_target(history, ["1", "2", "3"]) is None


def test_a_deploy_is_undone_by_a_rollback_and_an_undeploy_changes_no_champion():
    history = PUSHES + [step(DEPLOYED, "1", "3"), step(UNDEPLOYED, None, "1")]
    assert previous_champions(history) == ["1", "2", "3"]
    assert rollback_target(history, ["1", "2", "3"]) == "3"
    # re-deploying the champion after an undeploy replaces nobody
    assert previous_champions(history + [step(DEPLOYED, "1", "1")]) == ["1", "2", "3"]


def test_a_first_push_leaves_nothing_to_roll_back_to():
    assert rollback_target(PUSHES[:1], ["1"]) is None


def test_a_deleted_version_is_passed_over():
    assert rollback_target(PUSHES, ["1", "3"]) == "1"


def test_tf_serving_takes_only_numeric_directory_names_as_versions():
    assert numeric_versions(["1764950000", "models.config", "tmp-1", "17"]) == [17, 1764950000]


@pytest.mark.parametrize("entry, expected", [
    (None, []),
    (ServedModel(name="m", base_path="/s/m"), [30]),
    (ServedModel(name="m", base_path="/s/m", num_versions=2), [20, 30]),
    (ServedModel(name="m", base_path="/s/m", policy=VersionPolicy.ALL), [10, 20, 30]),
    (ServedModel(name="m", base_path="/s/m", policy=VersionPolicy.SPECIFIC, versions=[20]), [20]),
    (ServedModel(name="m", base_path="/s/m", policy=VersionPolicy.SPECIFIC, versions=[99]), []),
])
def test_selected_versions_follow_tf_servings_policies(entry, expected):
    assert selected_versions(entry, [10, 30, 20]) == expected


def test_each_action_has_its_event_name():
    assert [a.event for a in ModelAction] == [
        "retrain.model.pushed", "retrain.model.deployed", "retrain.model.undeployed",
        "retrain.model.rolled-back"]
