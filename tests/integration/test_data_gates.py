"""Data gates between runs, on real TFX statistics of synthetic data.

One model's history, run by run: a first run (nothing to compare with, and it says so); a
run on data with a planted drift (the generator's category boost and quantity scale) and
the drift gate on `fail`, stopped at ExampleValidator naming each feature and its distance,
with nothing trained or pushed; a run on a fresh sample of the first run's distribution that
passes the same gate; and, on a real `prefect server start` with retrain's automations, the
drifted data again with the gate on `warn`: the run goes on and the `retrain.data.drift`
notification reaches a local webhook. A CSV column left empty in every row is named.
The CLI shows per-feature distances between two runs and two runs side by side.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path

import pytest

from prefect_services import (
    deploy_entrypoint,
    ensure_process_pool,
    prefect_client,
    run_training_flow,
    wait_for,
    webhook_receiver,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
MODEL = "drift-gates"
ROWS = 2_000
# Planted drift: products of cat_00 become far more popular; every quantity triples.
DRIFT = {"category_boost": 3.0, "quantity_scale": 3.0}


def _data(session_dir: Path, name: str, **knobs) -> Path:
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate

    config = SyntheticConfig(rows=ROWS, seed=7, **knobs)
    return generate(config, session_dir / "data" / f"gates-{name}", overwrite=True).out_dir


def _config(root: Path, data: Path, drift_action: str = "fail", **overrides):
    from retrain.domain.examples import rating_config

    values = {
        "model_name": MODEL,
        "pipeline_root": str(root / "pipelines"),
        "pusher": {"serving_base": str(root / "serving")},
        "trainer": {"train_steps": 100, "eval_steps": 10},
        "beam": {"args": ["--direct_running_mode=in_memory"]},
        "validator": {"gates": {"drift": {"action": drift_action}}},
    }
    return rating_config(data, **{**values, **overrides})


def _record(flow_run_id) -> dict:
    from retrain.services.catalog import run_detail
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run_id = runs.run_for_flow_run(session, str(flow_run_id)).id
    return run_detail(run_id).model_dump()


def _cli(*argv: str) -> tuple[int, str, str]:
    from flows.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def history(prefect_harness, session_dir, tiny_interactions, tmp_path_factory):
    """Runs 1-3 of the model, in this process: first run, drift stopped, no drift."""
    from flows.training_pipeline import training_pipeline

    root = tmp_path_factory.mktemp("gates")
    drifted = _data(session_dir, "drifted", **DRIFT)
    # Same seed (the same planted buyers, products and categories), other sampled rows.
    fresh = _data(session_dir, "fresh", chunk_rows=1_000)
    states = {}
    for key, data in (("first", tiny_interactions), ("drifted", drifted), ("fresh", fresh)):
        states[key] = training_pipeline(_config(root, data), return_state=True)
    return {"root": root, "states": states, "drifted": drifted}


def test_a_first_run_has_no_drift_baseline_and_says_so(history):
    state = history["states"]["first"]
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.drift_baseline is None
    assert any("drift: not checked, no earlier finished run of drift-gates" in note
               for note in summary.data_notes), summary.data_notes


def test_planted_drift_stops_the_run_at_example_validator(history):
    state = history["states"]["drifted"]
    assert state.is_failed()
    record = _record(state.state_details.flow_run_id)
    assert record["status"] == "failed" and record["error_stage"] == "ExampleValidator"
    message = record["error_message"]
    assert "data gates failed: drift: category L-infinity distance" in message, message
    assert "quantity Jensen-Shannon divergence" in message, message
    assert f"against {MODEL} #1" in message, message
    # the distance is printed and lies above the default threshold of 0.1
    category = message.split("category L-infinity distance ")[1].split(" ")[0]
    assert float(category) > 0.1
    stages = {s["stage"]: s["status"] for s in record["stages"]}
    assert stages["Trainer"] == "skipped" and stages["Pusher"] == "skipped"
    assert record["blessed"] is None and record["registered_version"] is None
    trained = list((history["root"] / "pipelines" / MODEL).glob("Trainer/*/_COMPLETE.json"))
    assert len(trained) == 2  # the first and the fresh run's models; none of this run


def test_a_fresh_sample_of_the_same_data_passes_the_drift_gate(history):
    state = history["states"]["fresh"]
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.drift_baseline == f"{MODEL} #1"  # run 2 failed: not a baseline
    assert not [f for f in summary.data_findings if f.comparison.value == "drift"]
    record = _record(state.state_details.flow_run_id)
    assert record["drift_baseline"] == f"{MODEL} #1"


def test_cli_shows_distances_between_two_runs_and_compares_them(history):
    fresh = _record(history["states"]["fresh"].state_details.flow_run_id)
    drifted = _record(history["states"]["drifted"].state_details.flow_run_id)
    code, out, err = _cli("runs", "data", drifted["id"], "--against", fresh["id"])
    assert code == 0, err
    assert f"train data of {MODEL} #2 against {MODEL} #3" in out
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()
            if line.strip().startswith(("category", "quantity", "city"))}
    assert float(rows["category"]) > 0.1 and float(rows["quantity"]) > 0.1
    assert float(rows["city"]) < 0.1  # cities were not touched
    # default: the model's newest finished run before it
    code, out, _ = _cli("runs", "data", fresh["id"], "--against")
    assert code == 0 and f"{MODEL} #3 against {MODEL} #1" in out
    code, out, err = _cli("runs", "compare", history_first_id(history), fresh["id"])
    assert code == 0, err
    assert "input.uri" in out and "metrics" in out and "mean_absolute_error" in out
    assert "B - A" in out and "against" in out
    code, _, err = _cli("runs", "data", history_first_id(history), "--against")
    assert code == 2 and "no earlier finished run" in err


def history_first_id(history) -> str:
    return _record(history["states"]["first"].state_details.flow_run_id)["id"]


def test_a_column_empty_in_every_row_is_named(history, prefect_harness, tiny_interactions):
    from flows.training_pipeline import training_pipeline

    data = history["root"] / "with-empty-column"
    data.mkdir()
    for csv in Path(tiny_interactions).glob("*.csv"):
        lines = csv.read_text().splitlines()
        (data / csv.name).write_text("\n".join(
            [lines[0] + ",notes"] + [line + "," for line in lines[1:]]) + "\n")
    config = _config(history["root"], data, model_name="empty-column")
    state = training_pipeline(config, return_state=True)
    assert state.is_failed()
    assert "ExampleValidator failed: " in state.message, state.message
    assert "empty: notes has no value in any row" in state.message, state.message


# The warn case runs against a real server, in a process of its own (run_training_flow).


def test_with_warn_the_run_goes_on_and_the_drift_event_is_notified(
        history, prefect_server):
    from deployments.automations import NOTIFY_DRIFT, sync_automations

    pool = f"gates-{uuid.uuid4().hex[:6]}"
    ensure_process_pool(prefect_server, pool)
    deploy_entrypoint(prefect_server, "flows/run_failure.py:handle_run_failure", "automation",
                      pool, REPO)
    with webhook_receiver() as receiver:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: prefect_server}), \
                prefect_client(prefect_server) as client:
            names = [a.name for a in sync_automations(client, webhook_url=receiver.url)]
        assert NOTIFY_DRIFT in names
        config = _config(history["root"], history["drifted"], drift_action="warn")
        # the same result storage as runs 1-3: the drifted data's stages come from cache
        final = run_training_flow(config, {"PREFECT_API_URL": prefect_server}, REPO, 900)
        assert final["type"] == "COMPLETED", final
        record = _record(final["flow_run_id"])
        assert record["status"] in ("completed", "not_blessed")
        assert record["drift_baseline"] == f"{MODEL} #3"
        assert any(f.startswith("drift: category L-infinity distance")
                   for f in record["data_findings"]), record["data_findings"]
        body = wait_for(lambda: next((b for b in receiver.received
                                      if "data gates flagged" in b.get("subject", "")), None),
                        timeout=120, what="the data drift notification")
    assert f"{MODEL} #4" in body["subject"]
    assert "drift: category L-infinity distance" in body["text"]
    assert "(warn)" in body["text"] and "The run went on." in body["text"]
