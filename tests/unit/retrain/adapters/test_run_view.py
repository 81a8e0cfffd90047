"""Where a run started here can be watched: the run view's address on the API in use."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

from retrain.adapters.local_server import run_view, runs_api


def test_the_run_view_is_on_the_servers_ui_and_absent_on_the_ephemeral_api():
    with temporary_settings({PREFECT_API_URL: "http://prefect.internal:4200/api"}):
        with runs_api() as server:  # a server named by PREFECT_API_URL: used as it is
            assert server is None
            assert run_view("f00") == "http://prefect.internal:4200/runs/flow-run/f00"
    with temporary_settings({PREFECT_API_URL: "https://api.prefect.cloud/api/accounts/a/"
                             "workspaces/w", PREFECT_UI_URL: "https://app.prefect.cloud/"
                             "account/a/workspace/w"}):
        assert run_view("f00") == "https://app.prefect.cloud/account/a/workspace/w/runs/flow-run/f00"
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with runs_api(ephemeral=True) as server:
            assert server is None and run_view("f00") is None
