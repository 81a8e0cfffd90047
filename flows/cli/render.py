"""How `retrain` prints service views: the stage bar, run tables, one run, training curves."""

from __future__ import annotations

from pathlib import Path

from retrain.domain.stages import STAGES
from retrain.domain.status import StageStatus

# One character per stage in pipeline order: the eight-segment stage bar.
BAR = {StageStatus.PENDING: ".", StageStatus.RUNNING: ">", StageStatus.COMPLETED: "#",
       StageStatus.CACHED: "=", StageStatus.FAILED: "X", StageStatus.SKIPPED: "-"}


def stage_bar(stages) -> str:
    """`[###=>...]`-style bar of a run's eight stages (legend in BAR)."""
    by_stage = {s.stage: s.status for s in stages}
    return "[" + "".join(BAR.get(by_stage.get(stage, StageStatus.PENDING), "?")
                         for stage in STAGES) + "]"


def print_estimate(estimate, note: str) -> None:
    """The `estimate` line of `runs start`, `runs rerun` and `runs estimate`."""
    if estimate is not None:
        print(f"estimate  ${estimate.low_usd:.2f}-${estimate.high_usd:.2f}, "
              f"{estimate.low_hours * 60:.0f}-{estimate.high_hours * 60:.0f} min "
              f"({note}; {estimate.basis})")
    else:
        print(f"estimate  {note}")


def print_run_list(items) -> None:
    """`retrain runs list`: one line per run with its stage bar, then the legend."""
    print(f"{'run':<36}  {'model':<24} {'#':>4}  {'status':<11} {'stages':<10}  created")
    for run in items:
        print(f"{run.id:<36}  {run.model_name:<24} {run.run_number:>4}  "
              f"{run.status.value:<11} {stage_bar(run.stages):<10}  "
              f"{run.created:%Y-%m-%d %H:%M}")
    print(f"legend: {'  '.join(f'{c} {s.value}' for s, c in BAR.items())}")


def print_run(run) -> None:
    """`retrain runs show`: stages, error, Trainer attempts, metrics, epochs, outcome."""
    deleted = f"  DELETED {run.deleted_at:%Y-%m-%d %H:%M}" if run.deleted_at else ""
    print(f"{run.label}  ({run.model_name})  {run.status.value}{deleted}")
    if run.description:
        print(f"  about    {run.description}")
    print(f"  stages   {stage_bar(run.stages)}")
    for stage in run.stages:
        seconds = f"{stage.seconds:7.1f}s" if stage.seconds is not None else "        "
        note = f"  {stage.message}" if stage.message else ""
        print(f"    {stage.stage.value:<17} {stage.status.value:<9} {seconds}{note}")
    if run.error_stage:
        print(f"  error    {run.error_stage}: {run.error_message}")
    if run.trainer_strategy or run.gpus_visible:
        print(f"  trainer  {run.trainer_strategy or 'user run_fn'}, "
              f"{run.trainer_replicas or 1} replica(s); GPUs seen: "
              f"{', '.join(run.gpus_visible) or 'none'}")
    for attempt in run.attempts:
        gpus = f"{attempt.gpu_count}×{attempt.gpu_type or 'any GPU'}" \
            if attempt.gpu_count else "CPU"
        resumed = (f", resumed after epoch {attempt.resumed_from_epoch}"
                   if attempt.resumed_from_epoch else "")
        reason = f": {attempt.reason}" if attempt.reason else ""
        print(f"  attempt  #{attempt.number} {gpus} {attempt.outcome.value}{resumed}{reason}")
    for name, value in sorted(run.metrics.items()):
        if isinstance(value, (int, float)):
            print(f"  metric   {name} = {value:.4f}")
    if run.epochs:
        keys = sorted({k for e in run.epochs for k in e.metrics})
        print("  epoch  " + "  ".join(f"{k:>16}" for k in keys))
        for epoch in run.epochs:
            print(f"  {epoch.epoch:>5}  " + "  ".join(
                f"{epoch.metrics.get(k, float('nan')):>16.4f}" for k in keys))
        if run.best_epoch_metric:
            print(f"  kept     epoch {run.best_epoch}, the best by {run.best_epoch_metric}")
    if run.blessed is not None:
        forced = f" (forced: {run.forced_reason})" if run.forced_reason else ""
        deployed = " (deployed)" if run.deployed else ""
        print(f"  blessed  {run.blessed}{forced}; registered version "
              f"{run.registered_version}{deployed}")
    if run.estimated_cost is not None:
        print(f"  estimate ${run.estimated_cost:.4f} at most")
    if run.cost is not None:
        print(f"  cost     ${run.cost:.4f} over {run.duration_seconds:.0f} s")
    if run.statistics_report:
        print(f"  data     {run.statistics_report}")
    if run.drift_baseline:
        print(f"  drift    measured against {run.drift_baseline}")
    for finding in run.data_findings:
        print(f"  gate     {finding}")


def print_curves(run) -> None:
    """The training curve: a PNG in the run's directory, and a plain-text plot."""
    from flows.cli.curves import text_curves, write_curve_png

    path = Path(run.run_dir) / "training_curve.png"
    try:
        write_curve_png(run.epochs, path, title=run.label)
    except OSError as exc:  # a read-only or remote pipeline root: the terminal plot remains
        print(f"  curve    (no PNG: {exc})")
    else:
        print(f"  curve    {path}")
    print(text_curves(run.epochs))


def print_best_runs(table) -> None:
    """`retrain runs best`: per model type, its runs best first by the key metric."""
    if not table:
        print("no finished runs with metrics yet")
    for kind, entries in table.items():
        direction = "higher" if entries[0].higher_is_better else "lower"
        print(f"{kind}: by {entries[0].metric} ({direction} is better)")
        for rank, entry in enumerate(entries, 1):
            print(f"  {rank:>2}. {entry.value:.4f}  {entry.run.label:<32} "
                  f"{entry.run.status.value:<11} {entry.run.id}")


def _schedule(model) -> str:
    return model.schedule.value if model.schedule else "none"


def print_model_list(models) -> None:
    """`retrain models list`: versions, champion, deployed, schedule."""
    print(f"{'model':<32} {'type':<12} {'runs':>4}  {'latest':>6} {'champion':>8}  "
          f"{'deployed':<8}  schedule")
    for m in models:
        kind = m.model_type.value if m.model_type else ""
        print(f"{m.name:<32} {kind:<12} {m.runs:>4}  {m.latest_version or '-':>6} "
              f"{m.champion_version or '-':>8}  "
              f"{'v' + m.deployed_version if m.deployed and m.deployed_version else 'no':<8}  "
              f"{_schedule(m)}")


def print_model(m) -> None:
    """`retrain models show`: one model, its template run and its versions."""
    kind = m.model_type.value if m.model_type else None
    print(f"{m.name}  ({kind})  {m.runs} runs; schedule {_schedule(m)}; "
          f"{_serving(m)}")
    if m.template:
        print(f"  template {m.template.label} ({m.template.id})")
    for v in m.versions:
        run = f"{v.run.label} ({v.run.id})" if v.run else "(no recorded run)"
        served = "serving" if m.deployed and v.version == m.deployed_version else ""
        print(f"  v{v.version:<4} {'champion' if v.champion else '':<8} {served:<7}  {run}")
    if m.history:
        print("  history:")
    for change in m.history:
        print(f"  {change.sequence:>3}. {change.at:%Y-%m-%d %H:%M:%S}  {print_change_line(change)}")


def _serving(m) -> str:
    if not m.deployed:
        return "not deployed" + (f" (champion v{m.champion_version})" if m.champion_version
                                 else "")
    since = f" since {m.deployed_at:%Y-%m-%d %H:%M}" if m.deployed_at else ""
    return f"deployed v{m.deployed_version}{since}"


def print_serving_change(change) -> None:
    """A deploy, undeploy, rollback or push done: what serves now and where it is written."""
    print(print_change_line(change))
    if change.serving_uri and change.version:
        print(f"  serving {change.serving_uri}")
    if change.config_uri:
        print(f"  TF Serving config {change.config_uri}")


def print_change_line(change) -> str:
    """One serving change: action, what serves, what it replaced, who and why."""
    run = f" from {change.run.label}" if change.run else ""
    why = f": {change.reason}" if change.reason else ""
    return f"{change.summary}{run}, by {change.actor}{why}"
