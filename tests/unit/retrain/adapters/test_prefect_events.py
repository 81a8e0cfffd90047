"""An event is sent where a Prefect API is in reach, and never started one for itself."""

from __future__ import annotations

from retrain.adapters import prefect_events


def test_without_an_api_or_a_run_nothing_is_sent(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    sent = []
    monkeypatch.setattr("prefect.events.emit_event", lambda **kw: sent.append(kw))
    with temporary_settings({PREFECT_API_URL: None}):
        prefect_events.emit("retrain.model.deployed", prefect_events.model_resource("m"), [], {})
    assert sent == []
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        prefect_events.emit("retrain.model.deployed", prefect_events.model_resource("m"), [],
                            {"version": "2"})
    assert [(e["event"], e["resource"]["prefect.resource.id"], e["payload"]) for e in sent] == [
        ("retrain.model.deployed", "retrain.model.m", {"version": "2"})]
