"""The store under many threads and processes at once, on SQLite and a real PostgreSQL 15:
first use migrates once, the overlap policy admits one run of a model at a time, a run
whose process stopped its heartbeat stops counting, and one of many runs claims a stage
directory.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from retrain.domain.overlap import OverlapAction
from retrain.domain.status import RunStatus, StageStatus
from retrain.store import runs
from retrain.store.database import session_maker
from retrain.store.migrate import current_revision, head_revision, upgrade

pytestmark = [pytest.mark.service]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> str:
    """A store URL on each backend that nothing has migrated yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_db")


@pytest.fixture
def store(fresh_url, monkeypatch) -> str:
    """A migrated store that this process's `sessions()` uses."""
    from retrain.settings import get_settings

    upgrade(fresh_url)
    monkeypatch.setenv("RETRAIN_DATABASE_URL", fresh_url)
    monkeypatch.setenv("RETRAIN_HEARTBEAT_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("RETRAIN_OVERLAP_POLL_SECONDS", "0.1")
    get_settings.cache_clear()
    yield fresh_url
    get_settings.cache_clear()


def test_first_use_by_twenty_threads_and_four_processes_migrates_once(fresh_url):
    code = f"from retrain.store.migrate import upgrade; upgrade({fresh_url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        errors = [f.exception() for f in [pool.submit(upgrade, fresh_url) for _ in range(20)]]
    assert errors == [None] * 20
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert current_revision(fresh_url) == head_revision()


def _running(url: str, model: str, policy: str, count: int) -> list[str]:
    """`count` runs of `model` opened by flow runs, as their hooks leave them."""
    ids = []
    with session_maker(url).begin() as session:
        for _ in range(count):
            flow_run_id = str(uuid.uuid4())
            run = runs.create_run(session, model, {"model_name": model, "overlap": policy},
                                  flow_run_id=flow_run_id)
            runs.set_status(session, run.id, RunStatus.RUNNING,
                            heartbeat_at=dt.datetime.now(dt.timezone.utc))
            ids.append(flow_run_id)
    return ids


def _record(url: str, flow_run_id: str):
    with session_maker(url)() as session:
        run = runs.run_for_flow_run(session, flow_run_id)
        run.stages  # loaded while the session is open
        return run


def test_skip_admits_exactly_one_of_ten_runs_started_together(store):
    from retrain.services.overlap import wait_for_admission

    flow_runs = _running(store, "busy", "skip", 10)
    with ThreadPoolExecutor(max_workers=10) as pool:
        verdicts = list(pool.map(lambda f: wait_for_admission(f, say=lambda _: None), flow_runs))
    going = [f for f, v in zip(flow_runs, verdicts) if v.action is OverlapAction.GO]
    assert len(going) == 1
    winner = _record(store, going[0]).run_number
    for flow_run_id, verdict in zip(flow_runs, verdicts):
        if flow_run_id in going:
            continue
        assert verdict.action is OverlapAction.SKIP
        record = _record(store, flow_run_id)
        assert record.status == RunStatus.SKIPPED
        assert record.error_message.endswith(f"run #{winner} of busy is active")
        assert "overlap policy 'skip'" in record.error_message
        assert record.error_stage is None  # no stage ran, none is blamed
        assert {s.status for s in record.stages} == {StageStatus.SKIPPED}


def test_queue_lets_runs_go_one_at_a_time_in_run_number_order(store):
    from retrain.services import lifecycle
    from retrain.services.overlap import admit

    flow_runs = _running(store, "queued", "queue", 3)
    order = []
    for _ in range(3):
        verdicts = {f: admit(f) for f in flow_runs if f not in order}
        going = [f for f, v in verdicts.items() if v.action is OverlapAction.GO]
        assert len(going) == 1
        waiting = [v for v in verdicts.values() if v.action is OverlapAction.WAIT]
        assert all(v.reason.startswith("queued by the overlap policy") and "of queued" in v.reason
                   for v in waiting)
        order.append(going[0])
        lifecycle.end_run(going[0], RunStatus.FAILED, "done with it")
    assert [_record(store, f).run_number for f in order] == [1, 2, 3]


def test_a_run_whose_heartbeat_stopped_does_not_block_the_model(store):
    from sqlalchemy import update

    from retrain.services.overlap import admit
    from retrain.store.orm import TrainingRun

    dead, = _running(store, "orphaned", "cancel", 1)
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    with session_maker(store).begin() as session:
        session.execute(update(TrainingRun).where(TrainingRun.flow_run_id == dead)
                        .values(heartbeat_at=long_ago, admitted_at=long_ago))
    late, = _running(store, "orphaned", "cancel", 1)
    assert admit(late).action is OverlapAction.GO
    blocked, = _running(store, "orphaned", "cancel", 1)
    verdict = admit(blocked)
    assert verdict.action is OverlapAction.CANCEL and verdict.blocking == [2]
    assert _record(store, blocked).status == RunStatus.CANCELLED


def test_allow_admits_every_run(store):
    from retrain.services.overlap import admit

    flow_runs = _running(store, "side-by-side", "allow", 5)
    assert {admit(f).action for f in flow_runs} == {OverlapAction.GO}


def test_twelve_runs_reaching_one_stage_directory_together_give_it_to_one(store):
    """Identical runs side by side (`allow`) claim a stage's output directory: one claims it,
    the others are told which run holds it, on either backend with no "database is
    locked"; once that stage has ended, the next claim succeeds."""
    from retrain.domain.stages import Stage
    from retrain.services import lifecycle
    from retrain.services.overlap import claim_output

    flow_runs = _running(store, "twins", "allow", 12)
    directory = "gs://bucket/root/twins/Transform/0123456789abcdef"
    with ThreadPoolExecutor(max_workers=12) as pool:
        holders = list(pool.map(lambda f: claim_output(f, Stage.TRANSFORM, directory),
                                flow_runs))
    claimed = [f for f, holder in zip(flow_runs, holders) if holder is None]
    assert len(claimed) == 1
    winner = _record(store, claimed[0])
    assert [h for h in holders if h is not None] == [winner.run_number] * 11
    row = next(s for s in winner.stages if s.stage == Stage.TRANSFORM)
    assert (row.status, row.output_uri) == (StageStatus.RUNNING, directory)
    lifecycle.record_stage(claimed[0], Stage.TRANSFORM, StageStatus.COMPLETED)
    assert claim_output(flow_runs[0] if flow_runs[0] not in claimed else flow_runs[1],
                        Stage.TRANSFORM, directory) is None
