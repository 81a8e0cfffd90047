"""`retrain runs …`: start, estimate, rerun, edit, cancel and delete runs; list, show and
rank them (over `retrain/services/runs.py`, `estimates.py` and `catalog.py`)."""

from __future__ import annotations

import json
import sys

from flows.cli import render
from flows.cli.exits import ExitCode
from retrain.domain.recommender import ModelType
from retrain.domain.status import RunStatus

FAILED = frozenset({RunStatus.FAILED, RunStatus.CRASHED, RunStatus.CANCELLED})
EPHEMERAL = ("run here on Prefect's temporary in-process server instead of the embedded "
             "default's long-lived one (the run is not in the Prefect UI; nothing stays up)")


def _run_here(deployment: str | None):
    """The training flow, when a run is to run in this process (no deployment given)."""
    if deployment is not None:
        return None
    from flows.training_pipeline import training_pipeline

    return training_pipeline


def _outcome(ref, log=None) -> int:
    print(f"run {ref.label} ({ref.id}) is {ref.status.value}"
          + (f"; flow run {ref.flow_run_id}" if ref.flow_run_id else ""))
    if ref.status not in FAILED:
        return ExitCode.DONE
    from retrain.services.catalog import run_detail

    detail = run_detail(ref.id)
    failures = [f"{stage.stage.value}: {stage.message}" for stage in detail.stages
                if stage.status.value == "failed" and stage.message]
    if not failures:
        failures = [detail.error_message or ref.status.value]
    more = f"`retrain runs show {ref.id[:8]}` shows more" + (f"; log {log}" if log else "")
    for failure in failures:
        print(f"run {ref.label} {ref.status.value}: {failure} ({more})", file=sys.stderr)
    return ExitCode.RUN_FAILED


def _submit(args, ref, config) -> int:
    """Start the run; one run here writes its logs to a file, not the terminal, and goes to
    the Prefect server the UI shows (the embedded default's, unless PREFECT_API_URL names
    one or --ephemeral is given)."""
    from flows.cli.quiet import into_log, log_path
    from retrain.adapters.local_server import run_view, runs_api
    from retrain.services import runs

    if args.deployment is not None:
        return _outcome(runs.submit(ref, config, args.deployment, None))
    with runs_api(args.ephemeral) as server:
        if server is not None and server.started:
            print(server.started_note(), flush=True)
        with into_log(log_path(ref.label), args.verbose) as log:
            done = runs.submit(ref, config, None, _run_here(None))
        view = run_view(done.flow_run_id) if done.flow_run_id else None
    code = _outcome(done, None if args.verbose else log)
    if view:
        print(f"run view: {view}")
    return code


def _estimate(args) -> int:
    from retrain.services.configs import load_config
    from retrain.services.estimates import estimate_run

    render.print_estimate(*estimate_run(load_config(args.config)))
    return ExitCode.DONE


def _start(args) -> int:
    from retrain.services import runs
    from retrain.services.configs import load_config

    config = load_config(args.config)
    ref = runs.create_run(config, name=args.name, description=args.description)
    print(f"created run {ref.label} ({ref.id})")
    render.print_estimate(ref.estimate, ref.estimate_note)
    return _submit(args, ref, config)


def _rerun(args) -> int:
    from retrain.services import runs

    ref, config = runs.prepare_rerun(args.run)
    print(f"created run {ref.label} ({ref.id}), a rerun of {args.run}")
    render.print_estimate(ref.estimate, ref.estimate_note)
    return _submit(args, ref, config)


def _config(args) -> int:
    import yaml

    from retrain.services.catalog import run_config

    view = run_config(args.run)
    note = (f"edited {view.edited_at:%Y-%m-%d %H:%M}; the run itself ran with its original "
            f"config" if view.edited else "as run")
    print(f"# {view.run.label}: {note}")
    print(yaml.safe_dump(view.config, sort_keys=False), end="")
    return ExitCode.DONE


def _parse_value(text: str):
    """A --set value: JSON when it parses (numbers, true, null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _edit(args) -> int:
    from retrain.services import runs
    from retrain.services.configs import read_config_file

    changes: dict = {}
    if args.file:
        changes.update(read_config_file(args.file))
    for item in args.set or []:
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set {item!r}: expected PATH=VALUE, e.g. training.epochs=8")
        changes[path] = _parse_value(value)
    ref, diff = runs.edit_config(args.run, changes)
    if not diff:
        print(f"run {ref.label}: no change")
        return ExitCode.DONE
    for path, (old, new) in diff.items():
        print(f"  {path}: {json.dumps(old)} -> {json.dumps(new)}")
    print(f"run {ref.label} edited; later runs of {ref.model_name} start from this config")
    return ExitCode.DONE


def _cancel(args) -> int:
    from retrain.services import runs

    ref, flow_runs = runs.cancel_run(args.run)
    print(f"run {ref.label} cancelled"
          + (f"; Prefect flow runs cancelled: {', '.join(flow_runs)}" if flow_runs else ""))
    return ExitCode.DONE


def _delete(args) -> int:
    from retrain.services import runs

    if not args.yes:
        raise ValueError("deleting a run removes its artifacts; pass --yes to confirm")
    report = runs.delete_run(args.run)
    print(f"run {report.run.label} deleted")
    for item in report.removed:
        print(f"  removed {item}")
    for item in report.kept_shared:
        print(f"  kept    {item} (used by other runs)")
    return ExitCode.DONE


def _push(args) -> int:
    import getpass

    from flows.model_operations import push_blessed_run

    change = push_blessed_run(args.run, actor=f"{getpass.getuser()} (retrain CLI)",
                              reason=args.reason)
    render.print_serving_change(change)
    return ExitCode.DONE


def _list(args) -> int:
    from retrain.services.catalog import list_runs

    status = RunStatus(args.status) if args.status else None
    render.print_run_list(list_runs(model_name=args.model, status=status, limit=args.limit))
    return ExitCode.DONE


def _show(args) -> int:
    from retrain.services.catalog import run_detail

    run = run_detail(args.run)
    render.print_run(run)
    if run.epochs and not args.no_plot and not run.deleted_at:
        render.print_curves(run)
    return ExitCode.DONE


def _data(args) -> int:
    if args.against is not None:
        from flows.cli.insights import render_distances
        from retrain.services.comparisons import data_distances

        print(render_distances(data_distances(args.run, args.against or None)))
        return ExitCode.DONE
    from flows.cli.insights import render_insights
    from retrain.services.catalog import data_insights

    print(render_insights(data_insights(args.run)))
    return ExitCode.DONE


def _compare(args) -> int:
    from flows.cli.insights import render_comparison
    from retrain.services.comparisons import compare_runs

    print(render_comparison(compare_runs(args.a, args.b)))
    return ExitCode.DONE


def _best(args) -> int:
    from retrain.services.catalog import best_runs

    model_type = ModelType(args.model_type) if args.model_type else None
    render.print_best_runs(best_runs(model_type, args.limit))
    return ExitCode.DONE


def _reconcile(args) -> int:
    from retrain.services.reconcile import reconcile

    found = reconcile(lookback_hours=args.lookback_hours)
    for item in found:
        print(f"{item.run_name:<28} {item.status.value:<10} "
              f"{'recorded' if item.created else 'ended'}  flow run {item.flow_run_id}"
              + (f"  {item.message}" if item.message else ""))
    print(f"reconciled {len(found)} run(s) with Prefect")
    return ExitCode.DONE


def add_parsers(groups) -> None:
    """Add the `runs` command group to `retrain`."""
    run = groups.add_parser("runs", help="training runs").add_subparsers(dest="cmd", required=True)
    start = run.add_parser("start", help="start a run from a YAML/JSON config file")
    start.add_argument("config", help="config file (.yaml, .yml or .json)")
    start.add_argument("--deployment", help="submit to this Prefect deployment, e.g. "
                       "training-pipeline/default; default: run in this process")
    start.add_argument("--name", help="run name (default: the model name)")
    start.add_argument("--ephemeral", action="store_true", help=EPHEMERAL)
    start.add_argument("--description", help="what this run is for")
    start.set_defaults(fn=_start)
    estimate = run.add_parser("estimate", help="cost and duration of a config, before starting")
    estimate.add_argument("config")
    estimate.set_defaults(fn=_estimate)
    rerun = run.add_parser("rerun", help="rerun a finished run: same name, next number")
    rerun.add_argument("run")
    rerun.add_argument("--deployment", help="submit to this Prefect deployment")
    rerun.add_argument("--ephemeral", action="store_true", help=EPHEMERAL)
    rerun.set_defaults(fn=_rerun)
    config = run.add_parser("config", help="a run's config as YAML (as edited, if it was)")
    config.add_argument("run")
    config.set_defaults(fn=_config)
    edit = run.add_parser("edit", help="edit a finished run's training, gpu or evaluator config")
    edit.add_argument("run")
    edit.add_argument("--set", action="append", metavar="PATH=VALUE",
                      help="e.g. training.epochs=8, gpu.count=2, training.early_stopping."
                      "enabled=true (repeatable)")
    edit.add_argument("--file", help="YAML/JSON file of nested sections to change")
    edit.set_defaults(fn=_edit)
    cancel = run.add_parser("cancel", help="cancel an unfinished run and its flow runs")
    cancel.add_argument("run")
    cancel.set_defaults(fn=_cancel)
    delete = run.add_parser("delete", help="delete a finished run and its artifacts")
    delete.add_argument("run")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")
    delete.set_defaults(fn=_delete)
    push = run.add_parser("push", help="push a blessed run whose push failed or never "
                                       "happened: it becomes the champion and serves")
    push.add_argument("run")
    push.add_argument("--reason", help="why, kept in the model's history")
    push.set_defaults(fn=_push)
    listing = run.add_parser("list", help="newest runs first")
    listing.add_argument("--model", help="only this registered model")
    listing.add_argument("--status", choices=[s.value for s in RunStatus])
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(fn=_list)
    show = run.add_parser("show", help="one run: stages, metrics, epochs, training curve")
    show.add_argument("run")
    show.add_argument("--no-plot", action="store_true", help="skip the training curve")
    show.set_defaults(fn=_show)
    data = run.add_parser("data", help="data insights: statistics and schema summary (TFDV)")
    data.add_argument("run")
    data.add_argument("--against", nargs="?", const="", default=None, metavar="OTHER",
                      help="per-feature distances of RUN's train data from OTHER's (alone: "
                      "the model's newest finished run before RUN)")
    data.set_defaults(fn=_data)
    compare = run.add_parser("compare", help="two runs side by side: config, metrics, "
                             "blessing rules, data distances")
    compare.add_argument("a", help="run A (id or prefix)")
    compare.add_argument("b", help="run B")
    compare.set_defaults(fn=_compare)
    reconcile = run.add_parser("reconcile", help="record runs that ended (or died) without "
                               "their record saying so, from the Prefect API")
    reconcile.add_argument("--lookback-hours", type=float, default=72.0,
                           help="how far back to look for unrecorded flow runs (default 72)")
    reconcile.set_defaults(fn=_reconcile)
    best = run.add_parser("best", help="best finished runs per model type")
    best.add_argument("--model-type", choices=[t.value for t in ModelType],
                      help="only this model type")
    best.add_argument("--limit", type=int, default=10)
    best.set_defaults(fn=_best)
