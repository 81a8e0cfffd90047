"""`retrain schedules …` and `retrain automations …` (over retrain/services/schedules.py).

    retrain schedules preview --type T [when] [--timezone Z] [--count N]
    retrain schedules create (--model M | --run RUN) --type T [when] [--timezone Z]
                             [--name N] [--description D] [--max-lateness-minutes N]
                             [--pause-after-failures N] [--overlap allow|queue|skip|cancel]
                             [--base-deployment D]
    retrain schedules list | show SCHEDULE
    retrain schedules pause | resume | cancel SCHEDULE
    retrain schedules trigger SCHEDULE [--force]   (--force: even while paused)
    retrain schedules delete SCHEDULE --yes
    retrain schedules sync [--base-deployment D]   re-apply every schedule to Prefect
    retrain automations sync [--webhook-url URL] [--block SLUG/NAME]

`when` is --at "YYYY-MM-DD HH:MM" (once), --minute 0|15|30|45 (hourly), --time HH:MM (daily,
weekly, monthly), --day-of-week 0-6 (0=Monday), --day-of-month 1-31 or --last-day (monthly).
SCHEDULE is a schedule id, a unique prefix of one, or the model's name. Operations on
Prefect need PREFECT_API_URL to point at a running `prefect server start`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

EXIT_BAD_INPUT = 2


def _spec(args):
    from pydantic import ValidationError

    from retrain.domain.schedule.spec import ScheduleSpec
    from retrain.services.errors import InvalidSchedule

    fields = {"type": args.type, "timezone": args.timezone, "at": args.at,
              "minute": args.minute, "time": args.time, "day_of_week": args.day_of_week,
              "day_of_month": args.day_of_month, "last_day_of_month": args.last_day}
    try:
        return ScheduleSpec(**{k: v for k, v in fields.items() if v not in (None, False)})
    except ValidationError as exc:
        raise InvalidSchedule(exc) from exc


def _fmt(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M %Z}" if moment else "-"


def _print_preview(runs) -> None:
    for run in runs:
        print(f"  {run.local:%a %Y-%m-%d %H:%M %Z}   {run.utc:%Y-%m-%d %H:%M} UTC"
              + (f"   note: {run.note}" if run.note else ""))


def _print_schedule(view) -> None:
    rate = f"{view.success_rate:.0f}%" if view.success_rate is not None else "-"
    print(f"schedule   {view.id}  {view.name!r}")
    print(f"model      {view.model_name}")
    print(f"when       {view.summary}")
    print(f"status     {view.status.value}" + (f" ({view.status_reason})"
                                               if view.status_reason else ""))
    print(f"deployment {view.deployment or '-'}")
    print(f"policy     skip slots started over {view.max_lateness_minutes} min late; pause "
          f"after {view.pause_after_failures or 'never'} failed runs in a row; overlap "
          f"{view.overlap.value}")
    print(f"runs       {view.total_runs} total, {view.successful_runs} successful, "
          f"{view.failed_runs} failed, {view.skipped_runs} skipped; success rate {rate}; "
          f"{view.consecutive_failures} failed in a row")
    print(f"last run   {_fmt(view.last_run_at)}")
    print(f"next run   {_fmt(view.next_run_at)}")


def _preview(args) -> int:
    from retrain.services.schedules import preview_schedule

    from retrain.domain.schedule.spec import describe

    spec = _spec(args)
    upcoming = preview_schedule(spec, args.count)
    print(describe(spec))
    _print_preview(upcoming)
    return 0


def _create(args) -> int:
    from retrain.domain.overlap import OverlapPolicy
    from retrain.services.schedules import SchedulePolicy, create_schedule, preview_schedule

    from pydantic import ValidationError

    from retrain.services.errors import InvalidSchedule

    spec = _spec(args)
    try:
        policy = SchedulePolicy(max_lateness_minutes=args.max_lateness_minutes,
                                pause_after_failures=args.pause_after_failures)
    except ValidationError as exc:
        raise InvalidSchedule(exc) from exc
    view = create_schedule(spec, run_ref=args.run, model_name=args.model, name=args.name,
                           description=args.description, policy=policy,
                           base_deployment=args.base_deployment,
                           overlap=OverlapPolicy(args.overlap) if args.overlap else None)
    _print_schedule(view)
    print("next runs")
    _print_preview(preview_schedule(spec, 5))
    return 0


def _list(args) -> int:
    from retrain.services.schedules import list_schedules

    print(f"{'schedule':<36}  {'model':<24} {'status':<9} {'runs':>4} {'ok':>4} {'fail':>4}"
          f"  {'next run (UTC)':<16}  when")
    for view in list_schedules():
        nxt = f"{view.next_run_at:%Y-%m-%d %H:%M}" if view.next_run_at else "-"
        print(f"{view.id:<36}  {view.model_name:<24} {view.status.value:<9} "
              f"{view.total_runs:>4} {view.successful_runs:>4} {view.failed_runs:>4}  "
              f"{nxt:<16}  {view.summary}")
    return 0


def _show(args) -> int:
    from retrain.domain.status import ScheduleStatus
    from retrain.services.schedules import get_schedule, preview_schedule, schedule_runs

    view = get_schedule(args.schedule)
    _print_schedule(view)
    if view.status is ScheduleStatus.ACTIVE:
        print("next runs")
        _print_preview(preview_schedule(view.spec, 5))
    found = schedule_runs(args.schedule)
    if found:
        print("runs")
    for run in found[:20]:
        late = f"  {run.lateness_seconds:.0f}s late" if run.lateness_seconds else ""
        print(f"  {run.name} #{run.run_number:<4} {run.status.value:<11} "
              f"{run.error_stage or '':<16}{late}")
    return 0


def _change(action):
    def command(args) -> int:
        _print_schedule(action(args.schedule))
        return 0
    return command


def _trigger(args) -> int:
    from retrain.services.schedules import trigger_schedule

    print(f"started flow run {trigger_schedule(args.schedule, force=args.force)}")
    return 0


def _delete(args) -> int:
    from retrain.services.schedules import delete_schedule

    if not args.yes:
        print("deleting a schedule removes its Prefect deployment; its runs stay. "
              "Pass --yes to confirm.", file=sys.stderr)
        return EXIT_BAD_INPUT
    view = delete_schedule(args.schedule)
    print(f"deleted schedule {view.id} of {view.model_name} ({view.deployment})")
    return 0


def _sync(args) -> int:
    from retrain.services.schedules import sync_schedules

    for view in sync_schedules(args.base_deployment):
        print(f"synced {view.model_name}: {view.deployment} ({view.status.value}; "
              f"{view.summary})")
    return 0


def _automations_sync(args) -> int:
    from deployments.automations import sync_on_server

    for automation in sync_on_server(block=args.block, webhook_url=args.webhook_url):
        print(f"{'created' if automation.created else 'updated'} {automation.name!r} "
              f"({automation.id})")
    return 0


def _when(parser: argparse.ArgumentParser) -> None:
    from retrain.domain.schedule.spec import ScheduleType

    parser.add_argument("--type", required=True, choices=[kind.value for kind in ScheduleType])
    parser.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Warsaw")
    parser.add_argument("--at", help='once: "YYYY-MM-DD HH:MM" wall time in --timezone')
    parser.add_argument("--minute", type=int, help="hourly: 0, 15, 30 or 45")
    parser.add_argument("--time", help="daily, weekly, monthly: HH:MM")
    parser.add_argument("--day-of-week", type=int, help="weekly: 0=Monday … 6=Sunday")
    parser.add_argument("--day-of-month", type=int, help="monthly: 1-31")
    parser.add_argument("--last-day", action="store_true", help="monthly: each month's last day")


def add_parsers(groups) -> None:
    """Add the `schedules` and `automations` command groups to `retrain`."""
    from deployments.automations import DEFAULT_BLOCK
    from retrain.domain.overlap import OverlapPolicy

    sched = groups.add_parser("schedules", help="retraining schedules (Prefect deployments)")
    cmds = sched.add_subparsers(dest="cmd", required=True)
    preview = cmds.add_parser("preview", help="next runs of a schedule, with DST notes")
    _when(preview)
    preview.add_argument("--count", type=int, default=5)
    preview.set_defaults(fn=_preview)
    create = cmds.add_parser("create", help="schedule a model's retraining")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="freeze the model's template config")
    source.add_argument("--run", help="freeze this run's config (as edited)")
    _when(create)
    create.add_argument("--name", help="schedule name (default: '<model> retraining')")
    create.add_argument("--description")
    create.add_argument("--max-lateness-minutes", type=int, default=60,
                        help="skip a slot whose run starts later than this (default 60)")
    create.add_argument("--pause-after-failures", type=int, default=3,
                        help="pause after this many failed runs in a row; 0: never")
    create.add_argument("--overlap", choices=[policy.value for policy in OverlapPolicy],
                        help="while a run of the model is active, a new run: allow (run too), "
                        "queue (wait), skip or cancel (recorded with the reason); default: "
                        "the frozen config's")
    create.add_argument("--base-deployment", help="deployment whose infrastructure to copy "
                        "(default RETRAIN_SCHEDULE_BASE_DEPLOYMENT or training-pipeline/manual)")
    create.set_defaults(fn=_create)
    cmds.add_parser("list", help="every schedule").set_defaults(fn=_list)
    from retrain.services import schedules as scheduling

    for name, action, text in (
        ("show", None, "one schedule: statistics, next runs, its runs"),
        ("pause", scheduling.pause_schedule, "pause (its scheduled runs are removed)"),
        ("resume", scheduling.resume_schedule, "resume a paused schedule"),
        ("cancel", scheduling.cancel_schedule, "stop for good; the record stays"),
        ("trigger", None, "start a run of the frozen config now"),
    ):
        cmd = cmds.add_parser(name, help=text)
        cmd.add_argument("schedule")
        if name == "trigger":
            cmd.add_argument("--force", action="store_true",
                             help="run a paused schedule's config anyway (it stays paused)")
        fn = {"show": _show, "trigger": _trigger}.get(name) or _change(action)
        cmd.set_defaults(fn=fn)
    delete = cmds.add_parser("delete", help="delete a schedule and its deployment")
    delete.add_argument("schedule")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.set_defaults(fn=_delete)
    sync = cmds.add_parser("sync", help="re-apply every schedule to Prefect (idempotent)")
    sync.add_argument("--base-deployment")
    sync.set_defaults(fn=_sync)

    auto = groups.add_parser("automations", help="Prefect automations on run state")
    auto_cmds = auto.add_subparsers(dest="cmd", required=True)
    auto_sync = auto_cmds.add_parser("sync", help="create or update retrain's automations")
    auto_sync.add_argument("--webhook-url", help="create/update the webhook notification block")
    auto_sync.add_argument("--block", default=DEFAULT_BLOCK,
                           help=f"notification block as <type-slug>/<name> (default {DEFAULT_BLOCK})")
    auto_sync.set_defaults(fn=_automations_sync)
