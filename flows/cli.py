"""`retrain …`: read the run records from a terminal (operations that change runs come next).

    retrain db upgrade                       migrate the store to the newest schema
    retrain runs list [--model M] [--status S] [--limit N]
    retrain runs show RUN_ID
    retrain models list
    retrain models check-name NAME           exit 0 if free, 3 if taken, 2 if invalid

Exit codes: 0 done; 2 bad input or unknown id/name (the message names it); 3 name taken.
The store is RETRAIN_DATABASE_URL (default SQLite under RETRAIN_HOME).
"""

from __future__ import annotations

import argparse
import sys

from tasks.shared.records.schemas import STAGES, RunStatus

# One character per stage in pipeline order: the eight-segment stage bar.
BAR = {"pending": ".", "running": ">", "completed": "#", "cached": "=", "failed": "X",
       "skipped": "-"}
EXIT_BAD_INPUT = 2
EXIT_NAME_TAKEN = 3


def stage_bar(stages) -> str:
    """`[###=>...]`-style bar of a run's eight stages (legend in BAR)."""
    by_stage = {s.stage: s.status for s in stages}
    return "[" + "".join(BAR.get(by_stage.get(stage, "pending"), "?") for stage in STAGES) + "]"


def _sessions():
    from tasks.shared.tracking import sessions

    return sessions()


def _runs_list(args) -> int:
    from tasks.shared.records import runs

    status = RunStatus(args.status) if args.status else None
    with _sessions()() as session:
        rows = runs.list_runs(session, model_name=args.model, status=status, limit=args.limit)
        print(f"{'run':<36}  {'model':<24} {'#':>4}  {'status':<11} {'stages':<10}  created")
        for run in rows:
            print(f"{run.id:<36}  {run.registered_model.name:<24} {run.run_number:>4}  "
                  f"{run.status:<11} {stage_bar(run.stages):<10}  {run.created:%Y-%m-%d %H:%M}")
        print(f"legend: {'  '.join(f'{c} {s}' for s, c in BAR.items())}")
    return 0


def _runs_show(args) -> int:
    from tasks.shared.records import runs

    with _sessions()() as session:
        run = runs.get_run(session, args.run_id)
        print(f"{run.name}  (#{run.run_number} of {run.registered_model.name})  {run.status}")
        print(f"  stages   {stage_bar(run.stages)}")
        for stage in run.stages:
            seconds = f"{stage.seconds:7.1f}s" if stage.seconds is not None else "        "
            note = f"  {stage.message}" if stage.message else ""
            print(f"    {stage.stage:<17} {stage.status:<9} {seconds}{note}")
        if run.error_stage:
            print(f"  error    {run.error_stage}: {run.error_message}")
        for name, value in sorted((run.metrics or {}).items()):
            print(f"  metric   {name} = {value:.4f}")
        if run.epochs:
            keys = sorted({k for e in run.epochs for k in e.metrics})
            print("  epoch  " + "  ".join(f"{k:>16}" for k in keys))
            for epoch in run.epochs:
                print(f"  {epoch.epoch:>5}  " + "  ".join(
                    f"{epoch.metrics.get(k, float('nan')):>16.4f}" for k in keys))
        if run.blessed is not None:
            forced = f" (forced: {run.forced_reason})" if run.forced_reason else ""
            print(f"  blessed  {run.blessed}{forced}; registered version {run.registered_version}")
        if run.cost is not None:
            print(f"  cost     ${run.cost:.4f} over {run.duration_seconds:.0f} s")
    return 0


def _models_list(args) -> int:
    from tasks.shared.records import runs

    with _sessions()() as session:
        for model in runs.list_models(session):
            print(f"{model.name:<32} {model.model_type or '':<12} runs {model.last_run_number}")
    return 0


def _models_check_name(args) -> int:
    from tasks.shared.config import check_model_name
    from tasks.shared.records import runs

    try:
        check_model_name(args.name)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    with _sessions()() as session:
        model = runs.model_by_name(session, args.name)
    if model is not None:
        print(f"{args.name!r} is taken ({model.last_run_number} runs)")
        return EXIT_NAME_TAKEN
    print(f"{args.name!r} is free")
    return 0


def _db_upgrade(args) -> int:
    from tasks.shared.records.migrate import current_revision, upgrade

    upgrade()
    print(f"state store at revision {current_revision()}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The `retrain` command line."""
    root = argparse.ArgumentParser(prog="retrain", description=__doc__.splitlines()[0])
    groups = root.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="the state store").add_subparsers(dest="cmd", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(fn=_db_upgrade)
    run = groups.add_parser("runs", help="training runs").add_subparsers(dest="cmd", required=True)
    listing = run.add_parser("list", help="newest runs first")
    listing.add_argument("--model", help="only this registered model")
    listing.add_argument("--status", choices=[s.value for s in RunStatus])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(fn=_runs_list)
    show = run.add_parser("show", help="one run: stages, metrics, epochs, blessing")
    show.add_argument("run_id")
    show.set_defaults(fn=_runs_show)
    model = groups.add_parser("models", help="registered models").add_subparsers(
        dest="cmd", required=True)
    model.add_parser("list", help="every registered model").set_defaults(fn=_models_list)
    check = model.add_parser("check-name", help="is a model name free?")
    check.add_argument("name")
    check.set_defaults(fn=_models_check_name)
    return root


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors a user can fix exit 2 with the message."""
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except LookupError as exc:
        print(exc.args[0] if exc.args else exc, file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
