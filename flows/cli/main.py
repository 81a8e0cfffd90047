"""`retrain …`: run operations and run records from a terminal (over tasks/shared/operations).

    retrain db upgrade                          migrate the store to the newest schema
    retrain runs start CONFIG [--deployment D]  start a run from a YAML/JSON config file
    retrain runs estimate CONFIG                cost and duration before starting
    retrain runs rerun RUN [--deployment D]     rerun a finished run (same name, next number)
    retrain runs config RUN                     the run's config (as edited, if it was)
    retrain runs edit RUN --set PATH=VALUE …    edit a finished run's config (the template)
    retrain runs cancel RUN                     cancel a run and its Prefect flow runs
    retrain runs delete RUN --yes               delete a finished run and its artifacts
    retrain runs list [--model M] [--status S] [--limit N]
    retrain runs show RUN [--no-plot]           stages, metrics, epochs, training curve
    retrain runs data RUN                       statistics and schema summary, TFDV report path
    retrain runs best [--model-type T]          best runs per model type by key metric
    retrain models list [--no-sync]             versions, champion, deployed, schedule
    retrain models show NAME                    one model's versions
    retrain models check-name NAME              exit 0 if free, 3 if taken, 2 if invalid
    retrain schedules preview|create|list|show|pause|resume|cancel|trigger|delete|sync
    retrain automations sync [--webhook-url URL]   (see flows/cli/schedules.py)

RUN is a run id or a unique prefix of one (6+ characters). Without --deployment a run
executes in this process; with it, it is submitted to that Prefect deployment.

Exit codes: 0 done (a run that ended completed or not blessed); 1 the run failed, crashed
or was cancelled; 2 bad input: invalid config (every bad field is listed), unknown run id
or model name; 3 name taken; 4 refused in the run's current state (the reason is printed).
The store is RETRAIN_DATABASE_URL (default SQLite under RETRAIN_HOME).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrain.domain.stages import STAGES
from retrain.domain.status import RunStatus

# One character per stage in pipeline order: the eight-segment stage bar.
BAR = {"pending": ".", "running": ">", "completed": "#", "cached": "=", "failed": "X",
       "skipped": "-"}
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NAME_TAKEN = 3
EXIT_REFUSED = 4


def stage_bar(stages) -> str:
    """`[###=>...]`-style bar of a run's eight stages (legend in BAR)."""
    by_stage = {s.stage: s.status for s in stages}
    return "[" + "".join(BAR.get(by_stage.get(stage, "pending"), "?") for stage in STAGES) + "]"


def _sessions():
    from retrain.store.sessions import sessions

    return sessions()


def _print_estimate(estimate, note: str) -> None:
    if estimate is not None:
        print(f"estimate  ${estimate.low_usd:.2f}-${estimate.high_usd:.2f}, "
              f"{estimate.low_hours * 60:.0f}-{estimate.high_hours * 60:.0f} min "
              f"({note}; {estimate.basis})")
    else:
        print(f"estimate  {note}")


def _run_here(deployment: str | None):
    """The training flow, when a run is to run in this process (no deployment given)."""
    if deployment is not None:
        return None
    from flows.training_pipeline import training_pipeline

    return training_pipeline


def _outcome(ref) -> int:
    print(f"run {ref.label} ({ref.id}) is {ref.status.value}"
          + (f"; flow run {ref.flow_run_id}" if ref.flow_run_id else ""))
    failed = {RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELLED}
    return EXIT_RUN_FAILED if ref.status in failed else 0


def _runs_estimate(args) -> int:
    from retrain.services import runs as operations

    config = operations.load_config(args.config)
    _print_estimate(*operations.estimate_run(config))
    return 0


def _runs_start(args) -> int:
    from retrain.services import runs as operations

    config = operations.load_config(args.config)
    ref = operations.create_run(config, name=args.name, description=args.description)
    print(f"created run {ref.label} ({ref.id})")
    _print_estimate(ref.estimate, ref.estimate_note)
    return _outcome(operations.submit(ref, config, args.deployment, _run_here(args.deployment)))


def _runs_rerun(args) -> int:
    from retrain.services import runs as operations

    ref, config = operations.prepare_rerun(args.run)
    print(f"created run {ref.label} ({ref.id}), a rerun of {args.run}")
    _print_estimate(ref.estimate, ref.estimate_note)
    return _outcome(operations.submit(ref, config, args.deployment, _run_here(args.deployment)))


def _runs_config(args) -> int:
    from retrain.services import runs as operations
    from retrain.store import runs

    with _sessions()() as session:
        run = runs.get_run(session, args.run)
        edited = run.edited_config is not None
        config = operations.effective_config(run)
        note = (f"edited {run.config_edited_at:%Y-%m-%d %H:%M}; the run itself ran with its "
                f"original config" if edited else "as run")
    print(f"# {run.name} #{run.run_number}: {note}")
    import yaml

    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0


def _parse_value(text: str):
    """A --set value: JSON when it parses (numbers, true, null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _runs_edit(args) -> int:
    from retrain.services import runs as operations

    changes: dict = {}
    if args.file:
        changes.update(operations.read_config_file(args.file))
    for item in args.set or []:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set {item!r}: expected PATH=VALUE, e.g. training.epochs=8")
        changes[path] = _parse_value(value)
    ref, diff = operations.edit_config(args.run, changes)
    if not diff:
        print(f"run {ref.label}: no change")
        return 0
    for path, (old, new) in diff.items():
        print(f"  {path}: {json.dumps(old)} -> {json.dumps(new)}")
    print(f"run {ref.label} edited; later runs of {ref.model_name} start from this config")
    return 0


def _runs_cancel(args) -> int:
    from retrain.services import runs as operations

    ref, flow_runs = operations.cancel_run(args.run)
    print(f"run {ref.label} cancelled"
          + (f"; Prefect flow runs cancelled: {', '.join(flow_runs)}" if flow_runs else ""))
    return 0


def _runs_delete(args) -> int:
    from retrain.services import runs as operations

    if not args.yes:
        raise ValueError("deleting a run removes its artifacts; pass --yes to confirm")
    report = operations.delete_run(args.run)
    print(f"run {report.run.label} deleted")
    for item in report.removed:
        print(f"  removed {item}")
    for item in report.kept_shared:
        print(f"  kept    {item} (used by other runs)")
    return 0


def _runs_list(args) -> int:
    from retrain.store import runs

    status = RunStatus(args.status) if args.status else None
    with _sessions()() as session:
        rows = runs.list_runs(session, model_name=args.model, status=status, limit=args.limit)
        print(f"{'run':<36}  {'model':<24} {'#':>4}  {'status':<11} {'stages':<10}  created")
        for run in rows:
            print(f"{run.id:<36}  {run.registered_model.name:<24} {run.run_number:>4}  "
                  f"{run.status:<11} {stage_bar(run.stages):<10}  {run.created:%Y-%m-%d %H:%M}")
        print(f"legend: {'  '.join(f'{c} {s}' for s, c in BAR.items())}")
    return 0


def _show_curves(run) -> None:
    from retrain.services import runs as operations
    from flows.cli.curves import text_curves, write_curve_png

    path = Path(operations.run_dir(run.config, run)) / "training_curve.png"
    try:
        write_curve_png(run.epochs, path, title=f"{run.name} #{run.run_number}")
    except OSError as exc:  # a read-only or remote pipeline root: the terminal plot remains
        print(f"  curve    (no PNG: {exc})")
    else:
        print(f"  curve    {path}")
    print(text_curves(run.epochs))


def _runs_show(args) -> int:
    from retrain.store import runs

    with _sessions()() as session:
        run = runs.get_run(session, args.run)
        deleted = f"  DELETED {run.deleted_at:%Y-%m-%d %H:%M}" if run.deleted_at else ""
        print(f"{run.name} #{run.run_number}  ({run.registered_model.name})  {run.status}"
              f"{deleted}")
        if run.description:
            print(f"  about    {run.description}")
        print(f"  stages   {stage_bar(run.stages)}")
        for stage in run.stages:
            seconds = f"{stage.seconds:7.1f}s" if stage.seconds is not None else "        "
            note = f"  {stage.message}" if stage.message else ""
            print(f"    {stage.stage:<17} {stage.status:<9} {seconds}{note}")
        if run.error_stage:
            print(f"  error    {run.error_stage}: {run.error_message}")
        if run.trainer_strategy or run.gpus_visible:
            print(f"  trainer  {run.trainer_strategy or 'user run_fn'}, "
                  f"{run.trainer_replicas or 1} replica(s); GPUs seen: "
                  f"{', '.join(run.gpus_visible or []) or 'none'}")
        for attempt in run.trainer_attempts:
            gpus = f"{attempt.gpu_count}×{attempt.gpu_type or 'any GPU'}" \
                if attempt.gpu_count else "CPU"
            resumed = (f", resumed after epoch {attempt.resumed_from_epoch}"
                       if attempt.resumed_from_epoch else "")
            reason = f": {attempt.reason}" if attempt.reason else ""
            print(f"  attempt  #{attempt.number} {gpus} {attempt.outcome}{resumed}{reason}")
        for name, value in sorted((run.metrics or {}).items()):
            if isinstance(value, (int, float)):
                print(f"  metric   {name} = {value:.4f}")
        if run.epochs:
            keys = sorted({k for e in run.epochs for k in e.metrics})
            print("  epoch  " + "  ".join(f"{k:>16}" for k in keys))
            for epoch in run.epochs:
                print(f"  {epoch.epoch:>5}  " + "  ".join(
                    f"{epoch.metrics.get(k, float('nan')):>16.4f}" for k in keys))
        if run.blessed is not None:
            forced = f" (forced: {run.forced_reason})" if run.forced_reason else ""
            deployed = " (deployed)" if run.deployed else ""
            print(f"  blessed  {run.blessed}{forced}; registered version "
                  f"{run.registered_version}{deployed}")
        if run.estimated_cost is not None:
            print(f"  estimate ${run.estimated_cost:.4f} at most")
        if run.cost is not None:
            print(f"  cost     ${run.cost:.4f} over {run.duration_seconds:.0f} s")
        report = (run.artifacts or {}).get("statistics_report")
        if report:
            print(f"  data     {report}")
        if run.epochs and not args.no_plot and not run.deleted_at:
            _show_curves(run)
    return 0


def _runs_data(args) -> int:
    from retrain.services import runs as operations
    from retrain.adapters.tfdv_insights import render_insights

    print(render_insights(operations.data_insights(args.run)))
    return 0


def _runs_best(args) -> int:
    from retrain.services import runs as operations

    table = operations.best_runs(args.model_type, args.limit)
    if not table:
        print("no finished runs with metrics yet")
    for kind, entries in table.items():
        direction = "higher" if entries[0].higher_is_better else "lower"
        print(f"{kind}: by {entries[0].metric} ({direction} is better)")
        for rank, entry in enumerate(entries, 1):
            print(f"  {rank:>2}. {entry.value:.4f}  {entry.run.label:<32} {entry.run.status.value:<11}"
                  f" {entry.run.id}")
    return 0


def _models_list(args) -> int:
    from retrain.services import runs as operations

    models = operations.list_models(sync=not args.no_sync)
    print(f"{'model':<32} {'type':<12} {'runs':>4}  {'latest':>6} {'champion':>8}  "
          f"{'deployed':<8}  schedule")
    for m in models:
        print(f"{m.name:<32} {m.model_type or '':<12} {m.runs:>4}  {m.latest_version or '-':>6} "
              f"{m.champion_version or '-':>8}  {'yes' if m.deployed else 'no':<8}  {m.schedule}")
    return 0


def _models_show(args) -> int:
    from retrain.services import runs as operations

    (m,) = operations.list_models(name=args.name)
    print(f"{m.name}  ({m.model_type})  {m.runs} runs; schedule {m.schedule}; "
          f"{'deployed v' + m.champion_version if m.deployed else 'not deployed'}")
    if m.template:
        print(f"  template {m.template.label} ({m.template.id})")
    for v in m.versions:
        run = f"{v.run.label} ({v.run.id})" if v.run else "(no recorded run)"
        print(f"  v{v.version:<4} {'champion' if v.champion else '':<8}  {run}")
    return 0


def _models_check_name(args) -> int:
    from retrain.domain.config import check_model_name
    from retrain.store import runs

    check_model_name(args.name)
    with _sessions()() as session:
        model = runs.model_by_name(session, args.name)
        if model is not None:
            schedule = f"; schedule {model.schedule.status}" if model.schedule else ""
            print(f"{args.name!r} is taken ({model.last_run_number} runs{schedule})")
            return EXIT_NAME_TAKEN
    print(f"{args.name!r} is free")
    return 0


def _db_upgrade(args) -> int:
    from retrain.store.migrate import current_revision, upgrade

    upgrade()
    print(f"state store at revision {current_revision()}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The `retrain` command line."""
    root = argparse.ArgumentParser(prog="retrain", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(__doc__.splitlines()[1:]))
    groups = root.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="the state store").add_subparsers(dest="cmd", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(fn=_db_upgrade)

    run = groups.add_parser("runs", help="training runs").add_subparsers(dest="cmd", required=True)
    start = run.add_parser("start", help="start a run from a YAML/JSON config file")
    start.add_argument("config", help="config file (.yaml, .yml or .json)")
    start.add_argument("--deployment", help="submit to this Prefect deployment, e.g. "
                       "training-pipeline/default; default: run in this process")
    start.add_argument("--name", help="run name (default: the model name)")
    start.add_argument("--description", help="what this run is for")
    start.set_defaults(fn=_runs_start)
    estimate = run.add_parser("estimate", help="cost and duration of a config, before starting")
    estimate.add_argument("config")
    estimate.set_defaults(fn=_runs_estimate)
    rerun = run.add_parser("rerun", help="rerun a finished run: same name, next number")
    rerun.add_argument("run")
    rerun.add_argument("--deployment", help="submit to this Prefect deployment")
    rerun.set_defaults(fn=_runs_rerun)
    config = run.add_parser("config", help="a run's config as YAML (as edited, if it was)")
    config.add_argument("run")
    config.set_defaults(fn=_runs_config)
    edit = run.add_parser("edit", help="edit a finished run's training, gpu or evaluator config")
    edit.add_argument("run")
    edit.add_argument("--set", action="append", metavar="PATH=VALUE",
                      help="e.g. training.epochs=8, gpu.count=2, training.early_stopping."
                      "enabled=true (repeatable)")
    edit.add_argument("--file", help="YAML/JSON file of nested sections to change")
    edit.set_defaults(fn=_runs_edit)
    cancel = run.add_parser("cancel", help="cancel an unfinished run and its flow runs")
    cancel.add_argument("run")
    cancel.set_defaults(fn=_runs_cancel)
    delete = run.add_parser("delete", help="delete a finished run and its artifacts")
    delete.add_argument("run")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")
    delete.set_defaults(fn=_runs_delete)
    listing = run.add_parser("list", help="newest runs first")
    listing.add_argument("--model", help="only this registered model")
    listing.add_argument("--status", choices=[s.value for s in RunStatus])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(fn=_runs_list)
    show = run.add_parser("show", help="one run: stages, metrics, epochs, training curve")
    show.add_argument("run")
    show.add_argument("--no-plot", action="store_true", help="skip the training curve")
    show.set_defaults(fn=_runs_show)
    data = run.add_parser("data", help="data insights: statistics and schema summary (TFDV)")
    data.add_argument("run")
    data.set_defaults(fn=_runs_data)
    best = run.add_parser("best", help="best finished runs per model type")
    best.add_argument("--model-type", help="only this model type")
    best.add_argument("--limit", type=int, default=10)
    best.set_defaults(fn=_runs_best)

    model = groups.add_parser("models", help="registered models").add_subparsers(
        dest="cmd", required=True)
    models_list = model.add_parser("list", help="every registered model")
    models_list.add_argument("--no-sync", action="store_true",
                             help="do not refresh versions from the MLflow registry")
    models_list.set_defaults(fn=_models_list)
    models_show = model.add_parser("show", help="one model's versions")
    models_show.add_argument("name")
    models_show.set_defaults(fn=_models_show)
    check = model.add_parser("check-name", help="is a model name free?")
    check.add_argument("name")
    check.set_defaults(fn=_models_check_name)
    from flows.cli.schedules import add_parsers

    add_parsers(groups)
    return root


def _validation_lines(exc) -> list[str]:
    """One line per invalid field: `path.to.field: message`."""
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "(config)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {path}: {message}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run one command; map each kind of outcome to its exit code (see the module doc)."""
    from pydantic import ValidationError

    from retrain.services.runs import OperationRefused

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ValidationError as exc:
        what = "schedule" if exc.title in ("ScheduleSpec", "SchedulePolicy") else "config"
        print(f"invalid {what}: {exc.error_count()} problem(s)", file=sys.stderr)
        print("\n".join(_validation_lines(exc)), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OperationRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (LookupError, ValueError) as exc:
        print(exc.args[0] if exc.args else exc, file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
