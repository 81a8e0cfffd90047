"""retrain's automations as data: what triggers them, what they run, what they say.

The notification texts are Jinja templates the Prefect server renders against the
triggering event; here they are rendered against the very payload `tasks.shared.events`
emits, so a renamed field shows up as a failing test, not as a blank in a notification.
"""

from __future__ import annotations

import inspect
import uuid
from types import SimpleNamespace

import jinja2
import pytest

from deployments import automations
from flows.run_failure import handle_run_failure
from tasks.shared import events
from retrain.services.views import RunIdentity
from retrain.services.schedules import FailureReport

DEPLOYMENT_ID = uuid.uuid4()
BLOCK_ID = uuid.uuid4()


@pytest.fixture(autouse=True)
def api_configured():
    """Events are only sent with a Prefect API in reach (emit_event itself is replaced)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        yield


@pytest.fixture(scope="module")
def by_name():
    return {a.name: a for a in automations.definitions(DEPLOYMENT_ID, BLOCK_ID)}


def _render(template: str, **context) -> str:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(
        **context)


def _emitted(monkeypatch, name: str, payload: dict) -> dict:
    """The event `events.emit` sends for a run record, captured instead of sent."""
    sent = {}
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.update(kw))
    run = RunIdentity(id="r-1", name="ranker", run_number=7, model_name="ranker",
                      flow_run_id="f-1", schedule_id="s-1")
    events.emit(name, run, payload)
    return sent


def test_six_automations_with_unique_names(by_name):
    assert sorted(by_name) == sorted([automations.FAILED_RUN, automations.NOTIFY_FAILED,
                                      automations.NOTIFY_PAUSED, automations.NOTIFY_NOT_BLESSED,
                                      automations.NOTIFY_DRIFT, automations.NOTIFY_SERVING])


def _change(action, version, previous, **fields):
    import datetime as dt

    from retrain.services.views import RunRef, ServingChangeView

    run = RunRef(id="r-3", name="ranker", run_number=3, model_name="ranker",
                 status="completed") if version else None
    return ServingChangeView(
        model_name="ranker", sequence=4, action=action, version=version,
        previous_version=previous, serving_version="1764950000" if version else None,
        serving_uri="/srv/ranker/1764950000" if version else None,
        config_uri="/srv/ranker/models.config", actor="alice (retrain CLI)", run=run,
        flow_run_id=None, at=dt.datetime(2026, 12, 5, tzinfo=dt.timezone.utc),
        **{"reason": None, **fields})


@pytest.mark.parametrize("action, version, previous, expected", [
    ("pushed", "3", "2",
     "ranker: pushed by alice (retrain CLI). Serving version 3 from /srv/ranker/1764950000 "
     "(TF Serving config /srv/ranker/models.config). Replaced champion: 2."),
    ("rolled_back", "2", "3",
     "ranker: rolled_back by alice (retrain CLI). Serving version 2 from "
     "/srv/ranker/1764950000 (TF Serving config /srv/ranker/models.config). Replaced "
     "champion: 3. Reason: v3 regressed"),
    ("undeployed", None, "2",
     "ranker: undeployed by alice (retrain CLI). Nothing is served (TF Serving config "
     "/srv/ranker/models.config). Replaced champion: 2."),
])
def test_serving_change_notification_names_version_path_and_replaced_champion(
        by_name, monkeypatch, action, version, previous, expected):
    from retrain.domain.serving import ModelAction
    from retrain.services import serving

    sent = {}
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.update(kw))
    reason = {"reason": "v3 regressed"} if action == "rolled_back" else {}
    serving.announce(_change(ModelAction(action), version, previous, **reason))
    automation = by_name[automations.NOTIFY_SERVING]
    assert sent["event"] == ModelAction(action).event
    assert sent["event"] in automation.trigger.expect
    assert automation.trigger.match.model_dump() == {"prefect.resource.id": "retrain.model.*"}
    assert sent["resource"]["prefect.resource.id"] == "retrain.model.ranker"
    context = {"event": SimpleNamespace(payload=sent["payload"])}
    assert _render(automation.actions[0].body, **context) == expected
    assert _render(automation.actions[0].subject, **context) == (
        f"retrain: ranker {action}" + (f" v{version}" if version else ""))


def test_failed_crashed_or_timed_out_training_runs_start_the_failure_flow(by_name):
    automation = by_name[automations.FAILED_RUN]
    trigger = automation.trigger
    assert trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                              "prefect.flow-run.TimedOut"}
    assert trigger.match_related.model_dump() == {"prefect.resource.role": "flow",
                                     "prefect.resource.name": "training-pipeline"}
    (action,) = automation.actions
    assert action.type == "run-deployment" and action.deployment_id == DEPLOYMENT_ID
    # Every parameter the flow takes is passed, and nothing else.
    assert set(action.parameters) == set(inspect.signature(handle_run_failure.fn).parameters)
    flow_run = SimpleNamespace(id="1234", state=SimpleNamespace(name="Crashed",
                                                                message="exit -9"))
    rendered = {key: _render(value["template"], flow_run=flow_run)
                for key, value in action.parameters.items()}
    assert rendered == {"flow_run_id": "1234", "state_name": "Crashed", "message": "exit -9"}


def test_failure_notification_names_the_run_and_its_stage(by_name, monkeypatch):
    report = FailureReport(run_id="r-1", run_name="ranker #7", model_name="ranker",
                           status="failed", error_stage="Transform",
                           error_message="column 'price' missing", schedule_id="s-1",
                           consecutive_failures=2)
    event = _emitted(monkeypatch, events.RUN_FAILED, report.model_dump(mode="json"))
    automation = by_name[automations.NOTIFY_FAILED]
    assert automation.trigger.expect == {event["event"]}
    (action,) = automation.actions
    assert action.type == "send-notification" and action.block_document_id == BLOCK_ID
    context = {"event": SimpleNamespace(payload=event["payload"])}
    assert _render(action.subject, **context) == "retrain: ranker #7 failed"
    assert _render(action.body, **context) == (
        "Training run ranker #7 (model ranker) failed at stage Transform: column 'price' "
        "missing. Failed runs in a row: 2.")


def test_paused_notification_says_why_and_how_to_resume(by_name, monkeypatch):
    report = FailureReport(run_id="r-1", run_name="ranker #7", model_name="ranker",
                           schedule_paused=True, pause_reason="paused after 3 failed runs")
    event = _emitted(monkeypatch, events.SCHEDULE_PAUSED, report.model_dump(mode="json"))
    automation = by_name[automations.NOTIFY_PAUSED]
    assert automation.trigger.expect == {event["event"]}
    body = _render(automation.actions[0].body, event=SimpleNamespace(payload=event["payload"]))
    assert body == ("The schedule of ranker was paused: paused after 3 failed runs. Resume it "
                    "with `retrain schedules resume ranker`.")


def test_not_blessed_notification_gives_the_reason(by_name, monkeypatch):
    event = _emitted(monkeypatch, events.MODEL_NOT_BLESSED,
                     {"reason": "rmse 0.9 above 0.5", "metrics": {"rmse": 0.9}})
    automation = by_name[automations.NOTIFY_NOT_BLESSED]
    assert automation.trigger.expect == {event["event"]}
    assert event["resource"]["prefect.resource.id"] == "retrain.run.r-1"
    body = _render(automation.actions[0].body, event=SimpleNamespace(payload=event["payload"]))
    assert body == ("Training run ranker #7 (model ranker) finished but was not blessed, so "
                    "nothing was pushed: rmse 0.9 above 0.5")


def test_drift_notification_names_each_feature_its_distance_and_the_outcome(
        by_name, monkeypatch):
    from retrain.domain.data_gates import (
        Comparison, DataGatesConfig, DistanceGate, FeatureDistance, GateAction, Measure,
        judge_degenerate, judge_distances)
    from tasks.shared import tracking

    drift = judge_distances(Comparison.DRIFT, DistanceGate(), [
        FeatureDistance(feature="category", measure=Measure.L_INFINITY, value=0.31)],
        "ranker #6")
    empty = judge_degenerate(["notes"], {}, DataGatesConfig())
    sent = {}
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.update(kw))
    monkeypatch.setattr(tracking.lifecycle, "identify_flow_run", lambda _: RunIdentity(
        id="r-1", name="ranker", run_number=7, model_name="ranker"))
    tracking.announce_data_findings("f-1", drift + empty, "ranker #6", stopped=True)
    automation = by_name[automations.NOTIFY_DRIFT]
    assert automation.trigger.expect == {sent["event"]} == {events.DATA_DRIFT}
    assert sent["payload"]["features"] == ["category", "notes"]
    body = _render(automation.actions[0].body, event=SimpleNamespace(payload=sent["payload"]))
    assert body == ("Training run ranker #7 (model ranker): drift: category L-infinity "
                    "distance 0.31 > 0.1 against ranker #6 (warn); empty: notes has no value "
                    "in any row (fail). The run was stopped at ExampleValidator.")
    sent.clear()
    tracking.announce_data_findings("f-1", [], "ranker #6", stopped=False)
    assert sent == {}  # nothing flagged: no event


def test_a_block_reference_must_name_its_type():
    with pytest.raises(ValueError, match="must be <block-type-slug>/<name>"):
        automations._notification_block(None, "retrain-notifications", None)
    with pytest.raises(ValueError, match="makes a custom-webhook block, not 'slack-webhook'"):
        automations._notification_block(None, "slack-webhook/alerts", "http://x")
