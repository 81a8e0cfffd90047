"""After the push: roll back, deploy, undeploy and push again, on the real MLflow registry
and a real serving directory, with what TF Serving would load computed from the files.

One model's history: three runs of the rating model, each blessed and pushed (v1, v2, v3;
a rollback after v1 alone is refused, there being no earlier champion); then rollback → v2,
deploy v1 → v1, undeploy → nothing, rollback → v2 again, each recorded with who and why and
emitted as an event; a blessed run whose push never happened is pushed with `retrain runs
push`. On a real `prefect server start` with retrain's automations, a push from a training
flow run and a rollback run through the `rollback-model` deployment by a worker each reach
a local webhook.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import uuid
from pathlib import Path

import pytest

from prefect_services import (
    deploy_entrypoint,
    prefect_client,
    process_worker,
    run_training_flow,
    wait_for,
    webhook_receiver,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
MODEL = "serving-ops"


def _config(root: Path, data: Path, steps: int, **overrides):
    from retrain.domain.examples import rating_config

    values = {
        "model_name": MODEL,
        "pipeline_root": str(root / "pipelines"),
        "pusher": {"serving_base": str(root / "serving")},
        # a different step count: a new model from the same cached data and transform
        "trainer": {"train_steps": steps, "eval_steps": 10},
        "beam": {"args": ["--direct_running_mode=in_memory"]},
        # every model is blessed: these tests are about what happens after the blessing
        "evaluator": {"metrics": [{"class_name": "MeanAbsoluteError", "upper_bound": 5.0,
                                   "higher_is_better": False}],
                      "trivial_baseline": {"enabled": False}},
    }
    return rating_config(data, **{**values, **overrides})


def _cli(*argv: str) -> tuple[int, str, str]:
    from flows.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _serving_version(version: str) -> int:
    from retrain.adapters import mlflow_registry as registry

    return int(registry.version_info(MODEL, version).serving_version)


def _served(root: Path, serving: str = "serving") -> list[int]:
    """What TF Serving's policy selects from the files under `root/serving`."""
    from retrain.services.serving import served_versions

    return served_versions(MODEL, str(root / serving))


def _champion() -> str | None:
    from retrain.adapters import mlflow_registry as registry

    return registry.registry_state(MODEL).champion


def _model():
    from retrain.services.catalog import list_models

    (model,) = list_models(name=MODEL)
    return model


@pytest.fixture(scope="module")
def pushed(prefect_harness, tiny_interactions, tmp_path_factory):
    """Runs 1-3, each pushed; a rollback tried after the first push."""
    from flows.training_pipeline import training_pipeline
    from retrain.services import serving
    from retrain.services.errors import OperationRefused

    root = tmp_path_factory.mktemp("serving")
    states, refused = [], None
    for steps in (60, 70, 80):
        states.append(training_pipeline(_config(root, tiny_interactions, steps),
                                        return_state=True))
        if len(states) == 1:
            try:
                serving.rollback(MODEL, actor="test")
            except OperationRefused as exc:
                refused = str(exc)
    return {"root": root, "states": states, "refused": refused}


@pytest.fixture
def emitted(monkeypatch):
    """Events the operations emit, captured as Prefect's emit_event receives them."""
    sent: list[dict] = []
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.append(kw))
    return sent


def test_each_push_serves_the_new_version_and_records_the_champion_it_replaced(pushed):
    assert all(state.is_completed() for state in pushed["states"]), [
        s.message for s in pushed["states"]]
    assert _champion() == "3"
    assert _served(pushed["root"]) == [_serving_version("3")]
    model = _model()
    assert (model.deployed, model.deployed_version) == (True, "3")
    assert [(c.action.value, c.version, c.previous_version) for c in model.history] == [
        ("pushed", "1", None), ("pushed", "2", "1"), ("pushed", "3", "2")]
    assert all(c.actor.startswith(f"training-pipeline ({c.run.name}") for c in model.history)
    assert [c.run.run_number for c in model.history] == [1, 2, 3]


def test_a_rollback_with_no_previous_champion_is_refused(pushed):
    assert pushed["refused"] == (
        f"cannot roll back {MODEL}: v1 is the champion and no earlier champion is left to "
        f"return to (`retrain models show {MODEL}` lists its history)")


def test_rollback_deploy_undeploy_each_change_what_tf_serving_loads(pushed, emitted):
    root = pushed["root"]
    code, out, err = _cli("models", "rollback", MODEL, "--reason", "v3 regressed")
    assert code == 0, err
    assert out.startswith(f"{MODEL}: rolled_back, v2 serves (was v3) from {MODEL} #2")
    assert "v3 regressed" in out and f"TF Serving config {root}/serving/{MODEL}/models.config" in out
    assert _champion() == "2" and _served(root) == [_serving_version("2")]

    code, out, err = _cli("models", "deploy", MODEL, "--version", "1")
    assert code == 0, err
    assert _champion() == "1" and _served(root) == [_serving_version("1")]
    model = _model()
    assert (model.deployed, model.deployed_version) == (True, "1")
    assert model.deployed_at is not None

    code, out, err = _cli("models", "undeploy", MODEL, "--reason", "incident 42")
    assert code == 0, err
    assert _served(root) == []  # the versions are still there; TF Serving loads none
    assert len(list((root / "serving" / MODEL).glob("[0-9]*"))) == 3
    model = _model()
    assert (model.deployed, model.deployed_version, model.deployed_at) == (False, None, None)
    assert model.champion_version == "1" and _champion() == "1"  # still the baseline
    code, _, err = _cli("models", "undeploy", MODEL)
    assert code == 4 and f"nothing is deployed for {MODEL}" in err

    # the deploy of v1 replaced v2: rolling back returns to it
    code, out, err = _cli("models", "rollback", MODEL)
    assert code == 0, err
    assert _champion() == "2" and _served(root) == [_serving_version("2")]

    assert [e["event"] for e in emitted] == [
        "retrain.model.rolled-back", "retrain.model.deployed", "retrain.model.undeployed",
        "retrain.model.rolled-back"]
    assert {e["resource"]["prefect.resource.id"] for e in emitted} == {f"retrain.model.{MODEL}"}
    assert [(e["payload"]["version"], e["payload"]["replaced_version"]) for e in emitted] == [
        ("2", "3"), ("1", "2"), (None, "1"), ("2", "1")]
    assert emitted[0]["payload"]["reason"] == "v3 regressed"
    assert emitted[0]["payload"]["serving_uri"].startswith(f"{root}/serving/{MODEL}/")

    code, out, err = _cli("models", "show", MODEL)
    assert code == 0, err
    history = [line.strip() for line in out.splitlines() if line.strip()[:2].rstrip(".").isdigit()]
    assert [line.split("  ", 1)[1] for line in history[3:]] == [
        f"{MODEL}: rolled_back, v2 serves (was v3) from {MODEL} #2, by {_me()}: v3 regressed",
        f"{MODEL}: deployed, v1 serves (was v2) from {MODEL} #1, by {_me()}",
        f"{MODEL}: undeployed, nothing serves (was v1), by {_me()}: incident 42",
        f"{MODEL}: rolled_back, v2 serves (was v1) from {MODEL} #2, by {_me()}",
    ]
    assert f"deployed v2 since" in out.splitlines()[0]


def _me() -> str:
    import getpass

    return f"{getpass.getuser()} (retrain CLI)"


def test_a_version_that_is_unknown_or_gone_is_refused_with_nothing_changed(pushed):
    root = pushed["root"]
    before = (root / "serving" / MODEL / "models.config").read_text()
    code, _, err = _cli("models", "deploy", MODEL, "--version", "9")
    assert code == 2 and f"{MODEL} has no registered version '9' (registered: 1, 2, 3)" in err
    code, _, err = _cli("models", "deploy", "no-such-model", "--version", "1")
    assert code == 2 and "no registered model named 'no-such-model'" in err
    gone = root / "serving" / MODEL / str(_serving_version("3"))
    moved = root / "moved-away"
    shutil.move(gone, moved)
    try:
        code, _, err = _cli("models", "deploy", MODEL, "--version", "3")
        assert code == 4 and f"version 3 of {MODEL} cannot be served: its directory" in err
    finally:
        shutil.move(moved, gone)
    assert (root / "serving" / MODEL / "models.config").read_text() == before
    assert len(_model().history) == 7


def test_a_blessed_run_whose_push_failed_is_pushed_later(pushed, tiny_interactions):
    """Its Pusher could not write (the serving base is a file): the run failed after its
    blessing; `retrain runs push` pushes it once the destination is fixed."""
    from flows.training_pipeline import training_pipeline

    root = pushed["root"]
    blocked = root / "blocked-serving"
    blocked.write_text("not a directory")
    config = _config(root, tiny_interactions, 90, pusher={"serving_base": str(blocked)})
    state = training_pipeline(config, return_state=True)
    assert state.is_failed() and "Pusher failed" in state.message, state.message
    run_id = _run_id(state)
    code, _, err = _cli("runs", "push", pushed_run_id(pushed, 1))
    assert code == 4 and "was already pushed: version 1" in err
    blocked.unlink()
    code, out, err = _cli("runs", "push", run_id, "--reason", "disk fixed")
    assert code == 0, err
    assert out.startswith(f"{MODEL}: pushed, v4 serves (was v2) from {MODEL} #4, by ")
    assert "disk fixed" in out
    assert _champion() == "4"
    assert _served(root, "blocked-serving") == [_serving_version("4")]
    assert _served(root) == []  # one version serves: the old directory's config is emptied
    code, _, err = _cli("runs", "push", run_id)
    assert code == 4 and "was already pushed: version 4" in err


def test_a_run_that_was_not_blessed_is_not_pushed(pushed, tiny_interactions):
    from flows.training_pipeline import training_pipeline

    config = _config(pushed["root"], tiny_interactions, 80, evaluator={"metrics": [
        {"class_name": "MeanAbsoluteError", "upper_bound": 0.01, "higher_is_better": False}]})
    state = training_pipeline(config, return_state=True)
    assert state.is_completed() and state.name == "NotBlessed", state.message
    run_id = _run_id(state)
    before = len(_model().history)
    code, _, err = _cli("runs", "push", run_id)
    assert code == 4, err
    assert "was not blessed (" in err and "only a blessed model is pushed" in err, err
    assert len(_model().history) == before and _champion() == "4"


def _run_id(state) -> str:
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        return runs.run_for_flow_run(session, str(state.state_details.flow_run_id)).id


def pushed_run_id(pushed, index: int) -> str:
    return _run_id(pushed["states"][index - 1])


def test_push_and_rollback_reach_the_serving_side_through_the_automation(
        pushed, tiny_interactions, prefect_server, session_dir):
    from deployments.automations import NOTIFY_SERVING, sync_automations
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = pushed["root"]
    pool = f"serving-{uuid.uuid4().hex[:6]}"
    home = session_dir / f"worker-{pool}"
    with webhook_receiver() as receiver, \
            process_worker(prefect_server, pool, home, {}, REPO):
        deploy_entrypoint(prefect_server, "flows/run_failure.py:handle_run_failure",
                          "automation", pool, REPO)
        deploy_entrypoint(prefect_server, "flows/model_operations.py:rollback_model",
                          "manual", pool, REPO)
        with temporary_settings({PREFECT_API_URL: prefect_server}), \
                prefect_client(prefect_server) as client:
            names = [a.name for a in sync_automations(client, webhook_url=receiver.url)]
        assert NOTIFY_SERVING in names
        final = run_training_flow(_config(root, tiny_interactions, 100),
                                  {"PREFECT_API_URL": prefect_server}, REPO, 900)
        assert final["type"] == "COMPLETED", final
        pushed_note = wait_for(lambda: next(iter(receiver.matching("pushed v5")), None),
                               timeout=120, what="the push notification")
        assert pushed_note["subject"] == f"retrain: {MODEL} pushed v5"
        assert f"Serving version 5 from {root}/serving/{MODEL}/" in pushed_note["text"]
        assert "Replaced champion: 4." in pushed_note["text"]

        with temporary_settings({PREFECT_API_URL: prefect_server}):
            flow_run = run_deployment("rollback-model/manual", timeout=300, parameters={
                "model_name": MODEL, "reason": "canary failed", "requested_by": "oncall"})
        assert flow_run.state.is_completed(), flow_run.state
        rolled = wait_for(lambda: next(iter(receiver.matching("rolled_back v4")), None),
                          timeout=120, what="the rollback notification")
    assert "oncall (flow run " in rolled["text"] and "Replaced champion: 5." in rolled["text"]
    assert "Reason: canary failed" in rolled["text"]
    assert _champion() == "4" and _served(root, "blocked-serving") == [_serving_version("4")]
    change = _model().history[-1]
    assert (change.action.value, change.flow_run_id) == ("rolled_back", str(flow_run.id))
