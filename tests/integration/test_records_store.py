"""The run-record store on SQLite and on a real PostgreSQL 15 the suite starts itself.

Migrations build the schema; run numbers stay unique and consecutive under 50 concurrent
creators; the lifecycle refuses impossible transitions; retried writes never duplicate rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from retrain.store import runs, schedules
from retrain.store.database import engine_for, session_maker
from retrain.store.migrate import current_revision, upgrade
from retrain.store.orm import TrainingMetricsHistory, TrainingStage
from retrain.domain.recommender import ModelType
from retrain.domain.schedule.spec import ScheduleType
from retrain.domain.stages import STAGES, Stage
from retrain.domain.status import (
    AttemptOutcome,
    RunStatus,
    ScheduleStatus,
    StageStatus,
    TransitionError,
)

pytestmark = [pytest.mark.service]

HEAD = "0007"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> str:
    """A migrated, empty store URL on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_db")
    upgrade(url)
    return url


def test_upgrade_head_builds_the_schema_once(store):
    assert current_revision(store) == HEAD
    upgrade(store)  # already at head: nothing to do, nothing breaks
    tables = set(inspect(engine_for(store)).get_table_names())
    assert {"registered_model", "training_run", "training_stage",
            "training_metrics_history", "training_schedule"} <= tables


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_the_previous_revision_keeps_every_row(request, tmp_path, backend):
    url = (f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_db"))
    upgrade(url, "0001")
    assert current_revision(url) == "0001"
    with engine_for(url).begin() as connection:  # a store written by the 0001 code
        connection.execute(text(
            "INSERT INTO registered_model (id, name, model_type, last_run_number, deployed) "
            "VALUES ('m1', 'ranker', 'ranking', 1, false)"))
        connection.execute(text(
            "INSERT INTO training_run (id, registered_model_id, name, run_number, config, status) "
            "VALUES ('r1', 'm1', 'ranker', 1, '{\"epochs\": 3}', 'completed')"))
        connection.execute(text(
            "INSERT INTO training_stage (id, run_id, stage, position, status) "
            "VALUES ('s1', 'r1', 'ExampleGen', 0, 'completed')"))
    upgrade(url)
    assert current_revision(url) == HEAD
    with session_maker(url)() as session:
        run = runs.get_run(session, "r1")
        assert (run.name, run.run_number, run.config, run.status) == (
            "ranker", 1, {"epochs": 3}, "completed")
        assert run.deployed is False and run.deleted_at is None and run.edited_config is None
        assert run.schedule_id is None and run.lateness_seconds is None
        assert [s.stage for s in run.stages] == ["ExampleGen"] and run.stages[0].output_uri is None
        assert runs.list_runs(session) == [run]
    with session_maker(url).begin() as session:  # and the next run number continues from it
        assert runs.create_run(session, "ranker", {}).run_number == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_typed_status_columns_upgrade_rows_in_place_and_refuse_other_values(
    request, tmp_path, backend,
):
    url = (f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_db"))
    upgrade(url, "0004")
    with engine_for(url).begin() as connection:  # a store written by the 0004 code
        connection.execute(text(
            "INSERT INTO registered_model (id, name, model_type, last_run_number, deployed) "
            "VALUES ('m1', 'ranker', 'ranking', 1, false)"))
        connection.execute(text(
            "INSERT INTO training_schedule (id, registered_model_id, name, schedule_type, "
            "schedule_time, schedule_timezone, config, status, total_runs, successful_runs, "
            "failed_runs) VALUES ('sc1', 'm1', 'nightly', 'daily', '02:00', 'UTC', '{}', "
            "'paused', 1, 0, 1)"))
        connection.execute(text(
            "INSERT INTO training_run (id, registered_model_id, name, run_number, config, "
            "status, current_stage, error_stage, schedule_id) VALUES ('r1', 'm1', 'ranker', 1, "
            "'{}', 'failed', 'Trainer', 'Trainer', 'sc1')"))
        for position, (stage, status) in enumerate(
                [("ExampleGen", "cached"), ("StatisticsGen", "completed"),
                 ("Trainer", "failed"), ("Pusher", "skipped")]):
            connection.execute(text(
                "INSERT INTO training_stage (id, run_id, stage, position, status) "
                f"VALUES ('s{position}', 'r1', '{stage}', {position}, '{status}')"))
        connection.execute(text(
            "INSERT INTO training_metrics_history (id, run_id, epoch, metrics) "
            "VALUES ('e1', 'r1', 1, '{\"loss\": 0.5}')"))
        connection.execute(text(
            "INSERT INTO trainer_attempt (id, run_id, number, gpu_type, gpu_count, outcome, "
            "resumed_from_epoch) VALUES ('a1', 'r1', 1, 'nvidia-l4', 1, 'interrupted', 0)"))
    upgrade(url)
    assert current_revision(url) == HEAD
    with session_maker(url)() as session:
        [run] = runs.list_runs(session, status=RunStatus.FAILED)
        assert run.id == "r1" and run.status is RunStatus.FAILED
        assert (run.current_stage, run.error_stage) == (Stage.TRAINER, Stage.TRAINER)
        assert [(s.stage, s.status) for s in run.stages] == [
            (Stage.EXAMPLE_GEN, StageStatus.CACHED), (Stage.STATISTICS_GEN, StageStatus.COMPLETED),
            (Stage.TRAINER, StageStatus.FAILED), (Stage.PUSHER, StageStatus.SKIPPED)]
        assert all(isinstance(s.stage, Stage) and isinstance(s.status, StageStatus)
                   for s in run.stages)
        assert [(e.epoch, e.metrics) for e in run.epochs] == [(1, {"loss": 0.5})]
        assert [a.outcome for a in run.trainer_attempts] == [AttemptOutcome.INTERRUPTED]
        assert isinstance(run.trainer_attempts[0].outcome, AttemptOutcome)
        schedule = schedules.get_schedule(session, "ranker")
        assert schedule.status is ScheduleStatus.PAUSED and schedule.id == run.schedule_id
        assert schedule.schedule_type is ScheduleType.DAILY
        assert run.registered_model.model_type is ModelType.RANKING
        assert runs.list_runs(session, status=RunStatus.COMPLETED) == []
    for table, column in (("training_run", "status"), ("training_run", "current_stage"),
                          ("training_run", "error_stage"), ("training_stage", "stage"),
                          ("training_stage", "status"), ("trainer_attempt", "outcome"),
                          ("training_schedule", "status"), ("training_schedule", "schedule_type"),
                          ("registered_model", "model_type")):
        with pytest.raises(IntegrityError), engine_for(url).begin() as connection:
            connection.execute(text(f"UPDATE {table} SET {column} = 'Completed'"))
    with session_maker(url).begin() as session:  # and the store goes on as before
        runs.record_stage(session, "r1", "Trainer", StageStatus.RUNNING)
        assert runs.create_run(session, "ranker", {}).run_number == 2


def test_run_numbers_count_per_model_with_eight_pending_stages(store):
    with session_maker(store).begin() as session:
        first = runs.create_run(session, "ranker", {"epochs": 3}, model_type="ranking")
        second = runs.create_run(session, "ranker", {"epochs": 4})
        other = runs.create_run(session, "retriever", {})
        assert (first.run_number, second.run_number, other.run_number) == (1, 2, 1)
        assert first.name == "ranker" and first.run_number == 1
        assert [s.stage for s in first.stages] == list(STAGES)
        assert {s.status for s in first.stages} == {"pending"}


def test_fifty_concurrent_creations_get_distinct_consecutive_numbers(store):
    make = session_maker(store)

    def create(index: int) -> int:
        with make.begin() as session:
            return runs.create_run(session, "busy-model", {"index": index}).run_number

    with ThreadPoolExecutor(max_workers=50) as pool:
        numbers = list(pool.map(create, range(50)))
    assert sorted(numbers) == list(range(1, 51))
    with make() as session:
        model = runs.ensure_registered_model(session, "busy-model", None)
        assert model.last_run_number == 50


def test_lifecycle_refuses_going_back_and_repeats_are_no_ops(store):
    with session_maker(store).begin() as session:
        run = runs.create_run(session, "m", {})
        runs.set_status(session, run.id, RunStatus.RUNNING)
        runs.set_status(session, run.id, RunStatus.RUNNING)  # a retried hook
        runs.set_status(session, run.id, RunStatus.COMPLETED, blessed=True)
        assert run.duration_seconds is not None and run.duration_seconds >= 0
        with pytest.raises(TransitionError, match="is completed; it cannot become running"):
            runs.set_status(session, run.id, RunStatus.RUNNING)


def test_retried_stage_and_epoch_writes_do_not_duplicate_rows(store):
    with session_maker(store).begin() as session:
        run = runs.create_run(session, "m", {})
        for _ in range(2):
            runs.record_stage(session, run.id, "Trainer", StageStatus.RUNNING)
            runs.record_epoch(session, run.id, 1, 2, {"loss": 0.5})
        runs.record_epoch(session, run.id, 1, 2, {"loss": 0.4})
        run_id = run.id
    with session_maker(store)() as session:
        stages = session.scalar(select(func.count()).select_from(TrainingStage)
                                .where(TrainingStage.run_id == run_id))
        epochs = session.scalars(select(TrainingMetricsHistory)
                                 .where(TrainingMetricsHistory.run_id == run_id)).all()
        run = runs.get_run(session, run_id)
        assert stages == 8
        assert [(e.epoch, e.metrics) for e in epochs] == [(1, {"loss": 0.4})]
        assert (run.current_stage, run.current_epoch, run.total_epochs) == ("Trainer", 1, 2)


def test_trainer_attempts_are_updated_in_place_and_go_with_their_run(store):
    from retrain.store.orm import TrainerAttemptRecord
    from retrain.domain.refs import TrainerAttempt

    submitted = TrainerAttempt(number=1, gpu_type="nvidia-tesla-t4", gpu_count=4)
    with session_maker(store).begin() as session:
        run = runs.create_run(session, "m", {})
        runs.record_attempt(session, run.id, submitted)
        runs.record_attempt(session, run.id, submitted.model_copy(update={
            "outcome": AttemptOutcome.UNSCHEDULABLE, "reason": "0/3 nodes are available"}))
        runs.record_attempt(session, run.id, TrainerAttempt(
            number=2, gpu_type="nvidia-l4", gpu_count=4, outcome="succeeded",
            resumed_from_epoch=2))
        runs.record_trainer_devices(session, run.id, "MirroredStrategy", 4,
                                    [f"/physical_device:GPU:{i}" for i in range(4)])
        run_id = run.id
    with session_maker(store).begin() as session:
        run = runs.get_run(session, run_id)
        assert [(a.number, a.gpu_type, a.outcome, a.reason, a.resumed_from_epoch)
                for a in run.trainer_attempts] == [
            (1, "nvidia-tesla-t4", "unschedulable", "0/3 nodes are available", 0),
            (2, "nvidia-l4", "succeeded", None, 2)]
        assert (run.trainer_strategy, run.trainer_replicas, len(run.gpus_visible)) == \
            ("MirroredStrategy", 4, 4)
        session.delete(run)
    with session_maker(store)() as session:
        assert session.scalar(select(func.count()).select_from(TrainerAttemptRecord)) == 0


def test_unknown_run_id_and_stage_are_named(store):
    with session_maker(store).begin() as session:
        with pytest.raises(LookupError, match="no training run with id 'nope'"):
            runs.get_run(session, "nope")
        run = runs.create_run(session, "m", {})
        with pytest.raises(ValueError, match="unknown stage 'Trainr'"):
            runs.record_stage(session, run.id, "Trainr", StageStatus.RUNNING)


def test_the_deployed_flag_moves_to_the_run_of_the_new_champion(store):
    # The in-process Prefect API (a flow run without a server) registers its own SQLite
    # rendering of now(), with literal parameters; batched UPDATEs must not depend on now().
    import prefect.server.utilities.database  # noqa: F401

    with session_maker(store).begin() as session:
        first = runs.create_run(session, "ranker", {})
        second = runs.create_run(session, "ranker", {})
        first.registered_version, second.registered_version = "1", "2"
        runs.mark_deployed(session, first.registered_model, "1")
    # One flush changing only `deployed` on two rows at once (a batched UPDATE).
    with session_maker(store).begin() as session:
        runs.mark_deployed(session, runs.model_by_name(session, "ranker"), "2")
    with session_maker(store)() as session:
        model = runs.model_by_name(session, "ranker")
        assert {r.run_number: r.deployed for r in model.runs} == {1: False, 2: True}
        assert (model.champion_version, model.latest_version, model.deployed) == ("2", "2", True)


def _schedule(session, model_name: str = "ranker"):
    model = runs.ensure_registered_model(session, model_name, "ranking")
    return schedules.create_schedule(
        session, model, name=f"{model_name} retraining", config={"model_name": model_name},
        slug=f"schedule-{model_name}",
        fields={"schedule_type": "daily", "schedule_time": "09:00",
                "schedule_timezone": "Europe/Warsaw"},
    )


def _scheduled_run(session, schedule, status: RunStatus):
    run = runs.create_run(session, schedule.registered_model.name, {})
    run.schedule_id = schedule.id
    runs.set_status(session, run.id, RunStatus.RUNNING)
    if status is RunStatus.SKIPPED:
        runs.end_run(session, run.id, status, "late")
    elif status.terminal:
        runs.set_status(session, run.id, status)
    return run


def test_a_model_has_one_schedule_and_a_second_is_refused_naming_it(store):
    with session_maker(store).begin() as session:
        first = _schedule(session)
        first_id = first.id
    with session_maker(store).begin() as session:
        with pytest.raises(schedules.ScheduleExists, match=f"already has schedule {first_id}"):
            _schedule(session)
    with session_maker(store)() as session:
        assert [s.id for s in schedules.list_schedules(session)] == [first_id]
        assert schedules.get_schedule(session, "ranker").id == first_id  # by model name
        assert schedules.get_schedule(session, first_id[:8]).id == first_id  # by id prefix
        with pytest.raises(LookupError, match="no schedule with id or model name 'nope'"):
            schedules.get_schedule(session, "nope")


def test_statistics_are_recounted_from_the_schedule_runs(store):
    with session_maker(store).begin() as session:
        schedule = _schedule(session)
        for status in (RunStatus.COMPLETED, RunStatus.NOT_BLESSED, RunStatus.FAILED,
                       RunStatus.SKIPPED, RunStatus.CRASHED, RunStatus.FAILED):
            _scheduled_run(session, schedule, status)
        _scheduled_run(session, schedule, RunStatus.RUNNING)  # unfinished: not counted
        runs.create_run(session, "ranker", {})  # a manual run of the model: not counted
        schedules.refresh_statistics(session, schedule)
        schedules.refresh_statistics(session, schedule)  # recount, not increment
        assert (schedule.total_runs, schedule.successful_runs, schedule.failed_runs,
                schedule.skipped_runs) == (5, 2, 3, 1)
        assert schedule.success_rate == 40.0
        # Newest first: failed, crashed, skipped (neither breaks nor extends a streak),
        # failed, then the not-blessed run ends it.
        assert schedule.consecutive_failures == 3
        assert schedule.last_run_at is not None

        # A status change (resume) starts the streak afresh; the totals stay.
        schedules.set_status(session, schedule, schedules.ScheduleStatus.ACTIVE, "resumed")
        schedules.refresh_statistics(session, schedule)
        assert (schedule.consecutive_failures, schedule.failed_runs) == (0, 3)
        _scheduled_run(session, schedule, RunStatus.FAILED)
        schedules.refresh_statistics(session, schedule)
        assert (schedule.consecutive_failures, schedule.total_runs) == (1, 6)


def test_deleting_a_schedule_keeps_its_runs(store):
    with session_maker(store).begin() as session:
        schedule = _schedule(session)
        run_id = _scheduled_run(session, schedule, RunStatus.COMPLETED).id
    with session_maker(store).begin() as session:
        session.delete(schedules.get_schedule(session, "ranker"))
    with session_maker(store)() as session:
        run = runs.get_run(session, run_id)
        assert run.status == "completed" and run.schedule_id is None


def test_an_ambiguous_id_prefix_is_refused_naming_it(store):
    from sqlalchemy import update

    from retrain.store.orm import TrainingSchedule

    with session_maker(store).begin() as session:
        for name, new in (("ranker", "abcdef01-0000-4000-8000-000000000000"),
                          ("retriever", "abcdef02-0000-4000-8000-000000000000")):
            schedule = _schedule(session, name)
            session.execute(update(TrainingSchedule).where(TrainingSchedule.id == schedule.id)
                            .values(id=new))
    with session_maker(store)() as session:
        with pytest.raises(LookupError, match="schedule id prefix 'abcdef' is ambiguous"):
            schedules.get_schedule(session, "abcdef")
        assert schedules.get_schedule(session, "abcdef02").registered_model.name == "retriever"
        with pytest.raises(LookupError, match="no training run with id 'abcdef'"):
            runs.get_run(session, "abcdef")


def test_a_run_that_never_reached_a_stage_blames_none(store):
    # A flow run crashed at submission (the worker got a 503): all eight stages are skipped,
    # and neither the error stage nor the current stage says Pusher.
    with session_maker(store).begin() as session:
        run = runs.create_run(session, "ranker", {}, flow_run_id="f-1")
        runs.end_run(session, run.id, RunStatus.CRASHED, "Flow run could not be submitted")
    with session_maker(store)() as session:
        run = runs.run_for_flow_run(session, "f-1")
        assert run.status == RunStatus.CRASHED and run.error_stage is None
        assert run.current_stage is None
        assert {s.status for s in run.stages} == {StageStatus.SKIPPED}
