"""Benchmark: TFX's Chicago-taxi native-Keras example, LocalDagRunner vs the training-pipeline flow.

Usage (from the repository root)::

    .venv/bin/python benchmarks/taxi_flow_vs_localdagrunner.py                  # full size
    .venv/bin/python benchmarks/taxi_flow_vs_localdagrunner.py --train-steps 20 --eval-steps 5
    .venv/bin/python benchmarks/taxi_flow_vs_localdagrunner.py --only flow --keep
    .venv/bin/python benchmarks/taxi_flow_vs_localdagrunner.py \
        --beam-args="--direct_running_mode=multi_processing --direct_num_workers=0"

Both sides run the files shipped inside the installed tfx wheel (taxi_utils_native_keras.py,
data/simple/data.csv). The LocalDagRunner side builds the pipeline with `_create_pipeline` of
TFX's own taxi_pipeline_native_keras.py; our side runs `training_pipeline(taxi_config(...))`.

For each runner the script measures two runs, each in a fresh interpreter (this script
re-invoked with --child) so that env read at import (PREFECT_HOME, TF_USE_LEGACY_KERAS) is
set before anything imports Prefect or TensorFlow:

- first run: an empty root (no MLMD database / no stage cache, no Prefect database);
- cached re-run: a second child on the same root, so TFX's MLMD cache or our stage cache hits.

Wall time is the whole child (interpreter start, imports, pipeline); peak memory is the
largest sum of RSS over the child and all its descendants (Beam workers, Prefect's ephemeral
server), polled every 0.2 s. RSS sums count shared pages once per process, so they overstate
the physical memory a little, the same way for both runners.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from measure import free_port, tree_rss

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {"ldr": "LocalDagRunner", "flow": "prefect flow"}
DEFAULT_BEAM_ARGS = "--direct_running_mode=multi_processing --direct_num_workers=2"
# Targets for our flow relative to LocalDagRunner (wall time of the child process).
FIRST_RUN_TARGET = 1.0
CACHED_RUN_TARGET = 0.3
METRIC = "binary_accuracy"
POLL_SECONDS = 0.2
_TF_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


# --------------------------------------------------------------------------------------
# Child side: one pipeline run in this interpreter, result written as JSON.
# --------------------------------------------------------------------------------------


def _taxi_example_dir() -> Path:
    """tfx/examples/chicago_taxi_pipeline inside the installed wheel (no TF import)."""
    from importlib.util import find_spec

    spec = find_spec("tfx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tfx is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "examples" / "chicago_taxi_pipeline"


def _overall_metric(evaluation_uri: str, name: str) -> float | None:
    """The candidate's value of `name` on the overall slice of a TFMA evaluation."""
    import tensorflow_model_analysis as tfma

    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for item in per_slice.metric_keys_and_values:
            key = item.key
            if key.name != name or key.is_diff or key.model_name not in ("", "candidate"):
                continue
            if item.value.HasField("double_value"):
                return float(item.value.double_value.value)
    return None


def _latest_evaluation_uri(store: Any, pipeline_root: Path) -> str:
    """URI of the newest ModelEvaluation: from MLMD, else the newest execution dir on disk."""
    from ml_metadata.proto import metadata_store_pb2

    live = [
        artifact
        for artifact in store.get_artifacts_by_type("ModelEvaluation")
        if artifact.state == metadata_store_pb2.Artifact.LIVE and artifact.uri
    ]
    if live:
        return max(live, key=lambda artifact: artifact.id).uri
    # TFX lays outputs out as <root>/<node>/<output key>/<execution id>.
    candidates = [p for p in (pipeline_root / "Evaluator" / "evaluation").glob("*") if p.is_dir()]
    numbered = [p for p in candidates if p.name.isdigit()]
    if not numbered:
        raise RuntimeError(f"no ModelEvaluation artifact in MLMD or under {pipeline_root}")
    return str(max(numbered, key=lambda p: int(p.name)))


def _latest_run_executions(store: Any) -> list[tuple[str, str]]:
    """(node, state) of every execution in the newest pipeline run, e.g. ('Trainer', 'CACHED')."""
    from ml_metadata.proto import metadata_store_pb2

    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        return []
    latest = max(runs, key=lambda context: context.id)
    type_names = {t.id: t.name for t in store.get_execution_types()}
    rows = []
    for execution in sorted(store.get_executions_by_context(latest.id), key=lambda e: e.id):
        node = type_names.get(execution.type_id, "?").rsplit(".", 1)[-1]
        state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
        rows.append((node, state))
    return rows


def run_ldr_child(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run TFX's reference taxi pipeline with LocalDagRunner under `root`."""
    from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as ref
    from tfx.orchestration import metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto import trainer_pb2
    from tfx.utils import proto_utils

    example = _taxi_example_dir()
    pipeline_root = root / "pipeline"
    metadata_path = root / "metadata" / "metadata.db"
    pipeline = ref._create_pipeline(  # pylint: disable=protected-access
        pipeline_name=ref._pipeline_name,  # pylint: disable=protected-access
        pipeline_root=str(pipeline_root),
        data_root=str(example / "data" / "simple"),
        module_file=str(example / "taxi_utils_native_keras.py"),
        serving_model_dir=str(root / "serving" / "chicago-taxi"),
        metadata_path=str(metadata_path),
        beam_pipeline_args=shlex.split(args.beam_args),
    )
    # _create_pipeline hard-codes 1000/150 steps; the quick mode needs fewer. The component
    # spec holds proto exec properties as JSON, the form TFX's compiler and cache key expect.
    trainer = next(node for node in pipeline.components if node.id == "Trainer")
    trainer.exec_properties["train_args"] = proto_utils.proto_to_json(
        trainer_pb2.TrainArgs(num_steps=args.train_steps)
    )
    trainer.exec_properties["eval_args"] = proto_utils.proto_to_json(
        trainer_pb2.EvalArgs(num_steps=args.eval_steps)
    )

    started = time.perf_counter()
    LocalDagRunner().run(pipeline)
    pipeline_seconds = time.perf_counter() - started

    from ml_metadata.metadata_store import metadata_store

    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(str(metadata_path))
    )
    executions = _latest_run_executions(store)
    failed = [node for node, state in executions if state not in ("COMPLETE", "CACHED")]
    if failed:
        raise RuntimeError(f"LocalDagRunner left executions not complete: {executions}")
    evaluation_uri = _latest_evaluation_uri(store, pipeline_root)
    return {
        "pipeline_s": pipeline_seconds,
        METRIC: _overall_metric(evaluation_uri, METRIC),
        "evaluation_uri": evaluation_uri,
        "stages": [{"stage": n, "state": s} for n, s in executions],
        "executed": [n for n, s in executions if s != "CACHED"],
    }


def run_flow_child(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run our training-pipeline flow on the taxi example under `root`."""
    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import taxi_config
    from tasks.shared.summary import render_text

    config = taxi_config(
        pipeline_root=str(root / "pipelines"),
        pusher={"serving_base": str(root / "serving")},
        beam={"args": shlex.split(args.beam_args)},
        trainer={"train_steps": args.train_steps, "eval_steps": args.eval_steps},
    )
    started = time.perf_counter()
    state = training_pipeline(config, return_state=True)
    pipeline_seconds = time.perf_counter() - started
    if state.is_failed() or state.is_crashed():
        raise RuntimeError(f"training-pipeline ended {state.name}: {state.message}")
    summary = state.result()
    print(render_text(summary), flush=True)
    return {
        "pipeline_s": pipeline_seconds,
        METRIC: summary.metrics.get(METRIC),
        "outcome": summary.outcome,
        "stages": [t.model_dump() for t in summary.stages],
        # A state other than Completed/Cached is shown as recorded, e.g. 'Pusher[Running]'.
        "executed": [
            t.stage if t.state == "Completed" else f"{t.stage}[{t.state}]"
            for t in summary.stages
            if t.state != "Cached"
        ],
    }


def child_main(runner: str, root: Path, result_path: Path, args: argparse.Namespace) -> int:
    """Entry point of a measured child: run one pipeline, write its result file."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    run = run_ldr_child if runner == "ldr" else run_flow_child
    result = run(root, args)
    result_path.write_text(json.dumps(result, indent=1))
    return 0


def warmup_main() -> int:
    """Import the heavy stack once so the first measured child does not pay a cold page cache."""
    import apache_beam  # noqa: F401
    import prefect  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401
    import tensorflow_transform  # noqa: F401
    import tfx.v1  # noqa: F401

    return 0


# --------------------------------------------------------------------------------------
# Parent side: launch children, measure wall time and peak RSS of each process tree.
# --------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One child run as the parent saw it."""

    seconds: float
    peak_rss_mib: float
    peak_processes: int
    returncode: int
    log: Path
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the child exited cleanly and wrote its result."""
        return self.returncode == 0 and bool(self.result)


def measure(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> Measurement:
    """Run `command`, polling the tree's RSS until it exits."""
    import psutil

    with log.open("w") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        peak = peak_count = 0
        while child.poll() is None:
            rss, count = tree_rss(proc)
            peak, peak_count = max(peak, rss), max(peak_count, count)
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
    return Measurement(
        seconds=seconds,
        peak_rss_mib=peak / 2**20,
        peak_processes=peak_count,
        returncode=child.returncode,
        log=log,
    )


def child_env(runner: str, root: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment of a measured child; the same TF settings for both runners."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RETRAIN_"))}
    env.update(_TF_ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if runner == "flow":
        env.update(
            PREFECT_HOME=str(root / "prefect"),
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            RETRAIN_HOME=str(root / "retrain"),
        )
        if api_url:
            env["PREFECT_API_URL"] = api_url
    return env


def run_child(
    runner: str, phase: str, root: Path, args: argparse.Namespace, api_url: str | None = None
) -> Measurement:
    """One measured pipeline run of `runner` on `root` (phase: 'first' or 'cached')."""
    result_path = root / f"result-{phase}.json"
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable, str(Path(__file__).resolve()),
        "--child", runner, "--root", str(root), "--result", str(result_path),
        "--train-steps", str(args.train_steps), "--eval-steps", str(args.eval_steps),
        f"--beam-args={args.beam_args}",
    ]
    log = root.parent / "logs" / f"{runner}-{phase}.log"
    print(f"[{time.strftime('%H:%M:%S')}] {RUNNERS[runner]}: {phase} run (log {log})", flush=True)
    # cwd = the run's root, so nothing a library writes relative to cwd lands in the repo.
    measurement = measure(command, child_env(runner, root, api_url), root, log)
    if result_path.exists():
        measurement.result = json.loads(result_path.read_text())
    status = "ok" if measurement.ok else f"FAILED (exit {measurement.returncode})"
    print(f"    {measurement.seconds:.1f} s, peak {measurement.peak_rss_mib:.0f} MiB: {status}",
          flush=True)
    if not measurement.ok:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print("    " + "\n    ".join(tail), flush=True)
    return measurement


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, dict[str, Measurement]]) -> None:
    """Print the table, per-run details and the ratios against the targets."""
    print()
    print(f"{'runner':<16} {'first_run_s':>11} {'cached_s':>9} {'peak_rss_mib':>12} "
          f"{'binary_accuracy':>15}")
    for runner, runs in results.items():
        first, cached = runs.get("first"), runs.get("cached")
        peaks = [m.peak_rss_mib for m in runs.values()]
        accuracy = first.result.get(METRIC) if first and first.ok else None
        print(
            f"{RUNNERS[runner]:<16} "
            f"{_fmt(first.seconds if first and first.ok else None, '.1f'):>11} "
            f"{_fmt(cached.seconds if cached and cached.ok else None, '.1f'):>9} "
            f"{_fmt(max(peaks) if peaks else None, '.0f'):>12} "
            f"{_fmt(accuracy, '.4f'):>15}"
        )

    print("\nper run (wall = whole child incl. interpreter start and imports; "
          "pipeline = the run call itself):")
    for runner, runs in results.items():
        for phase, m in runs.items():
            executed = m.result.get("executed")
            ran = ", ".join(executed) if executed else ("none" if m.ok else "?")
            print(
                f"  {RUNNERS[runner]:<15} {phase:<6} wall {m.seconds:7.1f} s  pipeline "
                f"{_fmt(m.result.get('pipeline_s'), '7.1f')} s  peak {m.peak_rss_mib:6.0f} MiB "
                f"({m.peak_processes} procs)  {METRIC} {_fmt(m.result.get(METRIC), '.4f')}  "
                f"executed: {ran}"
            )

    if set(results) != set(RUNNERS):
        return
    print()
    for phase, target in (("first", FIRST_RUN_TARGET), ("cached", CACHED_RUN_TARGET)):
        ours, theirs = results["flow"].get(phase), results["ldr"].get(phase)
        if not (ours and theirs and ours.ok and theirs.ok):
            print(f"{phase} run: flow/LocalDagRunner = n/a (a run failed)")
            continue
        ratio = ours.seconds / theirs.seconds
        verdict = "PASS" if ratio <= target else "MISS"
        print(f"{phase + ' run:':<12} flow/LocalDagRunner = {ratio:.2f}  "
              f"(target <= {target:.2f})  {verdict}")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the benchmark script."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-steps", type=int, default=1000,
                        help="Trainer steps (default 1000, as the reference pipeline)")
    parser.add_argument("--eval-steps", type=int, default=150,
                        help="Trainer eval steps (default 150, as the reference pipeline)")
    parser.add_argument("--only", choices=sorted(RUNNERS), help="run one side only")
    parser.add_argument("--beam-args", default=DEFAULT_BEAM_ARGS,
                        help=f"beam_pipeline_args for both runners, one string; write it as "
                        f"--beam-args=\"...\" (default: {DEFAULT_BEAM_ARGS})")
    parser.add_argument("--workdir", type=Path,
                        help="where runs, logs and results go (kept); default a temp dir, "
                        "removed afterwards unless --keep or a run failed")
    parser.add_argument("--keep", action="store_true", help="keep the default temp workdir")
    parser.add_argument(
        "--prefect-api", choices=["local", "ephemeral"], default="local",
        help="local: the embedded default, flow runs talk to the long-lived local server "
        "`make demo` starts in the background (retrain.adapters.local_server), started here "
        "before the measured runs as after a first demo (printed, not counted), as a "
        "deployment's runs find their server up; ephemeral: each flow run starts Prefect's "
        "temporary in-process server itself, counted in its time",
    )
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the unmeasured import of TF/TFX/Prefect that warms the page "
                        "cache, so the runner measured first is not penalised")
    parser.add_argument("--child", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--warmup-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run each runner twice (fresh, then cached) in child processes; print the comparison."""
    args = build_parser().parse_args(argv)
    if args.child:
        return child_main(args.child, args.root, args.result, args)
    if args.warmup_child:
        return warmup_main()

    try:
        import psutil  # noqa: F401
    except ImportError:
        print("error: psutil is needed to measure the process tree's memory", file=sys.stderr)
        return 2

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taxi-bench-"))
    workdir = workdir.resolve()
    runners = [args.only] if args.only else ["ldr", "flow"]
    for runner in runners:
        root = workdir / runner
        if root.exists() and any(root.iterdir()):
            print(f"error: {root} is not empty; a first run needs a fresh root", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)

    print(f"workdir {workdir}")
    print(f"train_steps={args.train_steps} eval_steps={args.eval_steps} "
          f"beam_args={args.beam_args!r} cpus={os.cpu_count()}", flush=True)
    if not args.no_warmup:
        warm = measure([sys.executable, str(Path(__file__).resolve()), "--warmup-child"],
                       child_env("ldr", workdir), workdir, workdir / "logs" / "warmup.log")
        print(f"warm-up imports: {warm.seconds:.1f} s (not counted)", flush=True)

    server, api_url = None, None
    if "flow" in runners and args.prefect_api == "local":
        from retrain.adapters.local_server import ensure_local_server

        server = ensure_local_server(workdir / "flow" / "prefect", free_port())
        api_url = server.api_url
        print(f"local Prefect server start: {server.seconds:.1f} s (not counted: after the "
              f"first `make demo` it is up; --prefect-api ephemeral counts a server start "
              f"per run); log {server.log}", flush=True)
    results: dict[str, dict[str, Measurement]] = {}
    try:
        for runner in runners:
            root = workdir / runner
            url = api_url if runner == "flow" else None
            results[runner] = {"first": run_child(runner, "first", root, args, url)}
            if results[runner]["first"].ok:
                results[runner]["cached"] = run_child(runner, "cached", root, args, url)
    finally:
        if server is not None:  # what `make stop` does
            subprocess.run([str(Path(sys.executable).with_name("prefect")), "server", "stop"],
                           env={**os.environ, "PREFECT_HOME": str(workdir / "flow" / "prefect")},
                           capture_output=True, timeout=120)

    report(results)
    summary = {
        runner: {phase: {"seconds": m.seconds, "peak_rss_mib": m.peak_rss_mib,
                         "returncode": m.returncode, **m.result} for phase, m in runs.items()}
        for runner, runs in results.items()
    }
    (workdir / "results.json").write_text(json.dumps(summary, indent=1))

    all_ok = all(m.ok for runs in results.values() for m in runs.values())
    if args.workdir is None and not args.keep and all_ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nruns, logs and results.json kept in {workdir}")
    # A benchmark: missing a target is a result, a failed pipeline is an error.
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
