"""The Prefect UI as the run view, driven in headless Chromium as a person would use it.

On a real `prefect server start` (UI and API on one loopback port, PostgreSQL as in
production) with a process worker serving `training-pipeline` from this checkout:

1. the deployment's Run → Custom run form renders PipelineConfig (descriptions, defaults);
   one field is changed (training epochs 2 → 3) and the run submitted;
2. its flow run page reaches Completed and lists the eight stage task runs, Completed;
   the state-store record of that run is completed and kept the changed field;
3. its artifacts: the markdown run summary (its heading) and the epochs table, one row per
   epoch (epoch, loss, val_loss, the model's metric, seconds);
4. a second run, cancelled from its flow run page while its Trainer runs, ends Cancelled in
   the UI, its Trainer task run Cancelled too (no task run left Running or Crashed), and is
   recorded cancelled at the Trainer (`retrain runs list --status cancelled`).

Each step saves a screenshot under the test's tmp_path (the folder is printed; `pytest -s`
shows it). Waits poll the page (Playwright's expect) or the store, never sleep.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from browser import chromium, open_tab, schema_form_input, state_badge, ui_url
from prefect_services import (
    deploy_entrypoint,
    prefect_client,
    prefect_server,
    process_environment,
    process_worker,
    production_env,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]
MODEL = "ui-run-view"
DEPLOYED_EPOCHS = 2  # the deployment's value; the form changes it to FORM_EPOCHS
FORM_EPOCHS = 3
# A whole run on tiny data takes 1-3 minutes on 2 cores; the UI shows it within seconds.
RUN_TIMEOUT_MS = 900_000
ENDED = re.compile(r"^(Completed|NotBlessed|Failed|Crashed|Cancelled)$")
# Running, or a state it ended in without being seen running.
STARTED = re.compile(rf"^Running$|{ENDED.pattern}")


def _config(data: Path, home: Path):
    from retrain.domain.examples import RECOMMENDER_METRICS, recommender_config

    return recommender_config(
        data, "retrieval", model_name=MODEL,
        pipeline_root=str(home / "pipelines"),
        pusher={"serving_base": str(home / "serving")},
        training={"epochs": DEPLOYED_EPOCHS},
        beam={"args": ["--direct_running_mode=in_memory"]},
        # Blessed (Completed, not NotBlessed): tiny data does not beat the most-popular
        # baseline by its margin, and this test is about the run view, not the blessing.
        evaluator={"metrics": RECOMMENDER_METRICS["retrieval"],
                   "trivial_baseline": {"enabled": False}},
    )


@pytest.fixture(scope="module")
def run_view(tmp_path_factory, tiny_interactions, postgres_url):
    """Prefect server with its UI (on PostgreSQL) + process worker + a `training-pipeline`
    deployment whose parameters are a partial config, as prefect.yaml's are."""
    from postgres_server import create_database

    home = tmp_path_factory.mktemp("ui-browser")
    suffix = uuid.uuid4().hex[:8]
    env = {
        "RETRAIN_HOME": str(home / "retrain"),
        "RETRAIN_DATABASE_URL": create_database(postgres_url, f"ui_store_{suffix}"),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **production_env(),
    }
    pool = f"ui-{suffix[:6]}"
    config = _config(tiny_interactions, home)
    with process_environment(env), \
            prefect_server(home / "server", ui=True,
                           database_url=create_database(postgres_url, f"ui_prefect_{suffix}")
                           ) as api_url, \
            process_worker(api_url, pool, home / "worker", env, cwd=REPO):
        deployment_id = deploy_entrypoint(
            api_url, "flows/training_pipeline.py:training_pipeline", "run-view", pool, REPO,
            parameters={"config": config.model_dump(mode="json", by_alias=True,
                                                    exclude_unset=True)})
        yield {"api_url": api_url, "ui": ui_url(api_url), "home": home, "env": env,
               "deployment": f"{ui_url(api_url)}/deployments/deployment/{deployment_id}"}


def _record(flow_run_id: str):
    """The state-store run record of a flow run (None until its hook has opened one)."""
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        if run is not None:
            session.expunge(run)  # read after the session closes
        return run


def _stages(run_id: str) -> dict[str, str]:
    from retrain.store import runs
    from retrain.store.sessions import sessions

    with sessions()() as session:
        # Enum members hash by name: key by the stage's and the status's values.
        return {stage.stage.value: stage.status.value
                for stage in runs.get_run(session, run_id).stages}


def _cli(run_view, *args: str) -> str:
    """`retrain ...` in a fresh process on the test's store; its stdout (exit 0 asserted)."""
    env = {**os.environ, **run_view["env"], "PREFECT_API_URL": run_view["api_url"]}
    done = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _unfinished_flow_runs(api_url: str) -> list[str]:
    with prefect_client(api_url) as client:
        return [run.name for run in client.read_flow_runs() if not run.state.is_final()]


def _artifact_key(suffix: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"{MODEL}-{suffix}")


def test_run_from_the_form_with_one_field_changed_completes_with_stages_and_artifacts(
        run_view, tmp_path):
    from playwright.sync_api import expect

    from retrain.domain.config import PipelineConfig
    from retrain.domain.recommender import TrainingParams
    from retrain.domain.stages import STAGES

    shots = tmp_path / "screenshots"
    print(f"\nscreenshots: {shots}")
    with chromium(shots) as browser:
        page = browser.page

        # 1. The deployment's Run → Custom run form, PipelineConfig rendered field by field.
        page.goto(run_view["deployment"])
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("button", name="Custom run").click()
        expect(page.get_by_text(PipelineConfig.model_fields["model_name"].description)
               ).to_be_visible()
        epochs_help = page.get_by_text(TrainingParams.model_fields["epochs"].description,
                                       exact=True)
        expect(epochs_help).to_be_attached()
        epochs = schema_form_input(page, "Epochs")
        expect(epochs).to_have_value(str(DEPLOYED_EPOCHS))
        # A field the deployment leaves out shows PipelineConfig's default.
        shuffle_buffer = schema_form_input(page, "Shuffle Buffer")
        expect(shuffle_buffer).to_have_value(
            str(TrainingParams.model_fields["shuffle_buffer"].default))
        shuffle_buffer.scroll_into_view_if_needed()
        expect(shuffle_buffer).to_be_visible()
        browser.shot("run-form-default-shown")
        epochs.scroll_into_view_if_needed()
        expect(epochs_help).to_be_visible()
        browser.shot("run-form-training-section")
        epochs.fill(str(FORM_EPOCHS))
        expect(epochs).to_have_value(str(FORM_EPOCHS))
        browser.shot("run-form-epochs-changed")
        with page.expect_response(lambda r: r.url.endswith("/create_flow_run")) as created:
            page.get_by_role("button", name="Submit").click()
        assert created.value.status == 201, created.value.text()
        flow_run = created.value.json()
        flow_run_id = flow_run["id"]
        # A toast names the new run (rendered twice: the first; it goes after a few
        # seconds), and the UI goes back to the deployment, the run listed there.
        expect(page.get_by_text(f"{flow_run['name']} scheduled to start").first).to_be_visible()
        page.wait_for_url(re.compile(rf"{re.escape(run_view['deployment'])}([?#].*)?$"))
        expect(page.get_by_role("link", name=flow_run["name"]).first).to_be_visible()
        browser.shot("run-submitted")

        # 2. Its flow run page: Completed, with the eight stages' task runs Completed.
        page.goto(f"{run_view['ui']}/runs/flow-run/{flow_run_id}")
        expect(state_badge(page)).to_have_text("Completed", timeout=RUN_TIMEOUT_MS)
        browser.shot("flow-run-completed")
        open_tab(page, "Task Runs")
        for stage in STAGES:
            task_run = page.locator(".task-run-list-item", has=page.get_by_role(
                "link", name=re.compile(rf"^{stage.value}-\w+$")))
            expect(task_run, f"one {stage.value} task run").to_have_count(1)
            expect(task_run.locator(".state-badge")).to_have_text("Completed")
        browser.shot("task-runs")

        # The record of the run started from the form: completed, with the changed field.
        record = wait_for(lambda: (run := _record(flow_run_id)) and run.status == "completed"
                          and run, timeout=120, what="the run record to say completed")
        shown = _cli(run_view, "runs", "show", record.id, "--no-plot")
        assert re.match(rf"{MODEL} #\d+ .* completed", shown), shown
        ran_with = yaml.safe_load(_cli(run_view, "runs", "config", record.id))
        assert ran_with["training"]["epochs"] == FORM_EPOCHS
        assert ran_with["training"]["learning_rate"] == 0.1  # the rest as deployed

        # 3. Its artifacts: the run summary (markdown), then the epochs table.
        open_tab(page, "Artifacts")
        summary_card = page.get_by_text(_artifact_key("run-summary"), exact=True)
        expect(summary_card).to_be_visible()
        browser.shot("artifacts")
        summary_card.click()
        # The summary's title (render_markdown's first line): model and outcome.
        expect(page.get_by_role("heading", level=1,
                                name=re.compile(rf"^Training run: {MODEL} — \w+"))
               ).to_be_visible()
        browser.shot("run-summary-artifact")
        # Further down: the training curve (a row per epoch) and the metrics against the
        # champion (a first run: none), each blessing rule, the MLflow run and version.
        curve = page.get_by_role("heading", level=2, name="Training curve")
        curve.scroll_into_view_if_needed()
        expect(page.get_by_text(f"{FORM_EPOCHS} of {FORM_EPOCHS} epochs.")).to_be_visible()
        expect(page.get_by_role("columnheader", name="champion")).to_be_visible()
        expect(page.get_by_text(re.compile(r"MLflow run \w+, registered version 1\."))
               .first).to_be_visible()
        browser.shot("run-summary-curve-and-evaluation", full_page=True)

        page.go_back()
        open_tab(page, "Artifacts")
        epochs_key = _artifact_key("epochs")
        epochs_card = page.get_by_text(epochs_key, exact=True)
        expect(epochs_card, f"the flow run's Artifacts tab shows no table artifact "
               f"{epochs_key!r} (the Trainer's per-epoch table)").to_be_visible()
        epochs_card.click()
        headers = page.get_by_role("columnheader")
        expect(headers.first).to_be_visible()
        columns = headers.all_inner_texts()
        for column in ("epoch", "loss", "val_loss", "val_recall_at_100", "seconds"):
            assert column in columns, f"no {column!r} column in the epochs table: {columns}"
        body_rows = page.locator("table tbody tr")
        expect(body_rows).to_have_count(FORM_EPOCHS)
        first_cells = [row.locator("td").first.inner_text() for row in body_rows.all()]
        assert first_cells == [str(n) for n in range(1, FORM_EPOCHS + 1)], first_cells
        browser.shot("epochs-table-artifact")
        page.get_by_role("columnheader", name="seconds").scroll_into_view_if_needed()
        browser.shot("epochs-table-artifact-seconds")


def test_run_cancelled_from_its_page_is_cancelled_in_the_ui_and_the_record(run_view, tmp_path):
    from playwright.sync_api import expect
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    shots = tmp_path / "screenshots"
    print(f"\nscreenshots: {shots}")
    with chromium(shots) as browser:
        page = browser.page

        # Two runs of one config at once would share stage directories: start the second
        # once every earlier run of the deployment has ended.
        wait_for(lambda: not _unfinished_flow_runs(run_view["api_url"]), timeout=900,
                 interval=2, what="earlier flow runs to end")

        # A second run: Run → Quick run, the deployment's parameters as they are.
        page.goto(run_view["deployment"])
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("button", name="Quick run").click()
        with page.expect_response(lambda r: r.url.endswith("/create_flow_run")) as created:
            page.get_by_role("dialog").get_by_role("button", name="Run", exact=True).click()
        assert created.value.status == 201, created.value.text()
        flow_run_id = created.value.json()["id"]

        page.goto(f"{run_view['ui']}/runs/flow-run/{flow_run_id}")
        expect(state_badge(page)).to_have_text(STARTED, timeout=RUN_TIMEOUT_MS)
        expect(state_badge(page), "the second run ended before it ran").to_have_text(
            "Running", timeout=1)
        # Cancel inside a stage that takes a while (the Trainer: epochs of TensorFlow).
        record = wait_for(lambda: (run := _record(flow_run_id))
                          and _stages(run.id).get("Trainer") == "running" and run,
                          timeout=600, interval=0.5, what="the second run's Trainer to start")
        open_tab(page, "Task Runs")
        trainer = page.locator(".task-run-list-item", has=page.get_by_role(
            "link", name=re.compile(r"^Trainer-\w+$")))
        expect(trainer.locator(".state-badge")).to_have_text("Running")
        browser.shot("second-run-training")

        # The flow run page's Cancel action, confirmed in its dialog.
        page.get_by_role("button", name="Cancel", exact=True).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Cancelling")
        browser.shot("cancel-dialog")
        dialog.get_by_role("button", name="Confirm").click()
        expect(state_badge(page)).to_have_text("Cancelled", timeout=300_000)
        browser.shot("flow-run-cancelled")
        # The stage the cancel interrupted is Cancelled too, not Crashed (the flow's
        # on_cancellation hook; the page shows it once it polls again).
        open_tab(page, "Task Runs")
        expect(trainer.locator(".state-badge")).to_have_text("Cancelled", timeout=120_000)
        browser.shot("cancelled-run-task-runs")
    with prefect_client(run_view["api_url"]) as client:
        left = {run.name: run.state_name for run in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if run.state_name not in ("Completed", "Cached", "Cancelled")}
    assert not left, f"task runs of the cancelled run left {left}"

    run = wait_for(lambda: (r := _record(flow_run_id)) and r.status != "running" and r,
                   timeout=120, what="the run record to leave running")
    assert run.status == "cancelled", (run.status, run.error_message)
    assert run.error_stage == "Trainer"
    stages = _stages(record.id)
    assert [stages[s] for s in ("Trainer", "Evaluator", "Pusher")] == [
        "failed", "skipped", "skipped"], stages
    listed = _cli(run_view, "runs", "list", "--model", MODEL, "--status", "cancelled")
    assert record.id in listed, listed
    assert "cancelled" in _cli(run_view, "runs", "show", record.id, "--no-plot").splitlines()[0]
