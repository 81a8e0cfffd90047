"""Real data volumes: the whole pipeline at 100k, 1M, 10M rows and a ~2 GB CSV, beside TFX's
LocalDagRunner on the same files.

Each case is one fresh child process (the flow: `training_pipeline` on a retrieval model
from config, 1 epoch, the streaming data path, Prefect's temporary server; LocalDagRunner:
CsvExampleGen → StatisticsGen → SchemaGen → ExampleValidator → Transform → Trainer with the
same library preprocessing_fn and run_fn). The parent polls the child tree's RSS; per stage it
prints seconds, input rows/s and the peak RSS inside the stage's time window (flow: the run
record's stage start/end; LocalDagRunner: MLMD's execution times), then the targets:

- peak RSS of the flow's process tree ≤ 4 GB at every size
- flow wall time 1M → 10M ≤ 13× (within 1.3× of linear)
- ExampleGen + StatisticsGen at 1M: LocalDagRunner's seconds ≥ 5× the flow's

```bash
.venv/bin/python benchmarks/scale.py                       # 100k, 1m, 10m, 2gb; LDR at 100k, 1m
.venv/bin/python benchmarks/scale.py --sizes 100k,1m --ldr-sizes 100k
.venv/bin/python benchmarks/scale.py --ldr-sizes 100k,1m,10m  # LDR 10M, stopped after 60 min
```
Exits 0 when every case ran (targets met or not), 1 when a case failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from measure import Trace, run_traced, start_prefect_server

REPO = Path(__file__).resolve().parents[1]
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000, "2gb": 41_700_000}
STAGES = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
          "Trainer", "Evaluator", "Pusher"]
LDR_TIMEOUT_S = 3600
GB = 1 << 30
TRAINING = {"epochs": 1, "batch_size": 1024, "learning_rate": 0.1}


def dataset(workdir: Path, rows: int) -> Path:
    """One CSV file of `rows` synthetic interactions, generated once under workdir/data."""
    sys.path.insert(0, str(REPO))
    from synthetic import SyntheticConfig, generate, read_dataset

    out = workdir / "data" / f"rows-{rows}"
    try:
        return read_dataset(out).out_dir
    except (FileNotFoundError, ValueError):
        config = SyntheticConfig(rows=rows, seed=0, rows_per_file=rows, buyers=20_000,
                                 products=2_000)
        return generate(config, out, overwrite=True).out_dir


def flow_config(data: Path, root: Path) -> Any:
    """The retrieval config both runners train: library features, 1 epoch."""
    from retrain.domain.examples import recommender_config

    return recommender_config(
        data, "retrieval", pipeline_root=str(root / "pipelines"),
        pusher={"serving_base": str(root / "serving")}, training=TRAINING,
        data={"engine": "streaming"},
    )


def child_flow(data: Path, root: Path, result: Path) -> int:
    """Run the flow; write each stage's window from the run record."""
    from flows.training_pipeline import training_pipeline
    from retrain.store import runs
    from retrain.store.sessions import sessions

    state = training_pipeline(flow_config(data, root), return_state=True)
    with sessions()() as session:
        run = runs.run_for_flow_run(session, str(state.state_details.flow_run_id))
        stages = [{"stage": str(s.stage), "status": str(s.status),
                   "start": s.started_at.timestamp() if s.started_at else None,
                   "end": s.finished_at.timestamp() if s.finished_at else None}
                  for s in run.stages]
    result.write_text(json.dumps({"ok": not state.is_failed(), "message": state.message,
                                  "stages": stages}))
    return 0 if not state.is_failed() else 1


def child_ldr(data: Path, root: Path, result: Path) -> int:
    """Run TFX's LocalDagRunner through the Trainer; stage windows from MLMD."""
    from retrain.adapters.tfx import prepare_tf_environment

    prepare_tf_environment()
    from tfx.components import (CsvExampleGen, ExampleValidator, SchemaGen, StatisticsGen,
                                Trainer, Transform)
    from tfx.orchestration import metadata, pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto import example_gen_pb2, trainer_pb2

    config = flow_config(data, root)
    spec = config.recommender.model_dump(mode="json")
    split = config.input.split
    example_gen = CsvExampleGen(
        input_base=str(data),
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern="*.csv")]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=split.train_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=split.eval_buckets),
        ])),
    )
    statistics = StatisticsGen(examples=example_gen.outputs["examples"])
    schema = SchemaGen(statistics=statistics.outputs["statistics"], infer_feature_shape=True)
    validator = ExampleValidator(statistics=statistics.outputs["statistics"],
                                 schema=schema.outputs["schema"])
    transform = Transform(
        examples=example_gen.outputs["examples"], schema=schema.outputs["schema"],
        preprocessing_fn="tasks.transform.preprocessing.preprocessing_fn",
        custom_config={"features": config.features.model_dump(mode="json")},
        disable_statistics=True,
    )
    trainer = Trainer(
        run_fn="tasks.trainer.run_fn.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"], schema=schema.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(num_steps=0), eval_args=trainer_pb2.EvalArgs(num_steps=0),
        custom_config=spec,
    )
    db = root / "mlmd.sqlite"
    LocalDagRunner().run(pipeline.Pipeline(
        pipeline_name="scale-ldr", pipeline_root=str(root / "ldr"),
        components=[example_gen, statistics, schema, validator, transform, trainer],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(db)),
        beam_pipeline_args=list(config.beam.args),
    ))
    import ml_metadata as mlmd

    store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(str(db)))
    types = {t.id: t.name for t in store.get_execution_types()}
    stages = []
    for execution in store.get_executions():
        name = types[execution.type_id].rsplit(".", 1)[-1].replace("CsvExampleGen", "ExampleGen")
        stages.append({"stage": name, "status": "completed",
                       "start": execution.create_time_since_epoch / 1000,
                       "end": execution.last_update_time_since_epoch / 1000})
    result.write_text(json.dumps({"ok": True, "message": "", "stages": stages}))
    return 0


def run_case(runner: str, label: str, rows: int, workdir: Path,
             api_url: str) -> tuple[Trace, dict]:
    """One child run in a fresh directory; its trace and result."""
    import shutil

    data = dataset(workdir, rows)
    root = workdir / "runs" / f"{runner}-{label}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "prefect").mkdir(parents=True)
    result = root / "result.json"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "RETRAIN_"))}
    env.update({"RETRAIN_HOME": str(root), "PREFECT_HOME": str(root / "prefect"),
           "PREFECT_API_URL": api_url,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
    command = [sys.executable, __file__, "--child", runner, str(data), str(root), str(result)]
    timeout = LDR_TIMEOUT_S if runner == "ldr" else None
    trace = run_traced(command, env, REPO, root / "child.log", timeout=timeout)
    outcome = json.loads(result.read_text()) if result.exists() else {
        "ok": False, "message": f"no result (exit {trace.returncode}; see {root}/child.log)",
        "stages": []}
    return trace, outcome


def report_case(runner: str, label: str, rows: int, trace: Trace, outcome: dict) -> None:
    """Per stage: seconds, input rows/s, peak RSS in its window; then the whole child."""
    status = "ok" if outcome["ok"] and trace.returncode == 0 else f"FAILED: {outcome['message']}"
    print(f"\n{label} ({rows:,} rows) · {runner} · {status}")
    print(f"  {'stage':<18}{'seconds':>9}{'rows/s':>12}{'peak RSS GB':>13}")
    windows = {s["stage"]: s for s in outcome["stages"]
               if s["start"] is not None and s["end"] is not None}
    for stage in STAGES:
        window = windows.get(stage)
        if window is None:
            continue
        seconds = window["end"] - window["start"]
        rate = f"{rows / seconds:,.0f}" if seconds > 0.5 else "-"
        peak = trace.peak_between(window["start"], window["end"]) / GB
        shown = f"{peak:.2f}" if peak else "-"  # no sample inside a sub-0.2 s stage
        print(f"  {stage:<18}{seconds:>9.1f}{rate:>12}{shown:>13}")
    print(f"  {'whole child':<18}{trace.seconds:>9.1f}{rows / trace.seconds:>12,.0f}"
          f"{trace.peak_rss / GB:>13.2f}   ({trace.peak_processes} processes at most)")


def stage_seconds(outcome: dict, names: list[str]) -> float | None:
    """Summed seconds of the named stages, None if one is missing."""
    windows = {s["stage"]: s["end"] - s["start"] for s in outcome["stages"]
               if s["start"] is not None and s["end"] is not None}
    if any(name not in windows for name in names):
        return None
    return sum(windows[name] for name in names)


def report_targets(results: dict[tuple[str, str], tuple[Trace, dict]]) -> None:
    """The issue's three targets, with the figures they come from."""
    print("\ntargets")
    for (runner, label), (trace, _) in results.items():
        if runner == "flow":
            verdict = "met" if trace.peak_rss <= 4 * GB else "MISSED"
            print(f"  peak RSS {label:>5}: {trace.peak_rss / GB:5.2f} GB (≤ 4 GB: {verdict})")
    one, ten = results.get(("flow", "1m")), results.get(("flow", "10m"))
    if one and ten:
        ratio = ten[0].seconds / one[0].seconds
        pipeline = [stage_seconds(r[1], STAGES) for r in (one, ten)]
        extra = (f"; stages alone {pipeline[1] / pipeline[0]:.1f}×" if all(pipeline) else "")
        print(f"  wall 1M → 10M: {one[0].seconds:.0f} s → {ten[0].seconds:.0f} s = "
              f"{ratio:.1f}× (≤ 13×: {'met' if ratio <= 13 else 'MISSED'}){extra}")
    ldr, flow = results.get(("ldr", "1m")), results.get(("flow", "1m"))
    if ldr and flow:
        names = ["ExampleGen", "StatisticsGen"]
        theirs, ours = stage_seconds(ldr[1], names), stage_seconds(flow[1], names)
        if theirs and ours:
            print(f"  ExampleGen+StatisticsGen at 1M: LocalDagRunner {theirs:.0f} s, flow "
                  f"{ours:.0f} s = {theirs / ours:.1f}× faster (≥ 5×: "
                  f"{'met' if theirs / ours >= 5 else 'MISSED'})")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments; run the children (or be one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,10m,2gb", help=f"of {sorted(SIZES)}")
    parser.add_argument("--ldr-sizes", default="100k,1m",
                        help="sizes LocalDagRunner runs (stopped after 60 min each)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/retrain-scale"),
                        help="data and run directories (data is generated once and kept)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        runner, data, root, result = args.child
        child = child_flow if runner == "flow" else child_ldr
        return child(Path(data), Path(root), Path(result))

    sizes = [s for s in args.sizes.split(",") if s]
    ldr_sizes = [s for s in args.ldr_sizes.split(",") if s]
    unknown = sorted(set(sizes + ldr_sizes) - set(SIZES))
    if unknown:
        parser.error(f"unknown size(s) {unknown}; choose from {sorted(SIZES)}")
    results: dict[tuple[str, str], tuple[Trace, dict]] = {}
    failed = False
    home = args.workdir / "prefect-server"
    home.mkdir(parents=True, exist_ok=True)
    server, api_url, took = start_prefect_server(home, home / "server.log")
    print(f"prefect server at {api_url} (started in {took:.0f} s, not counted)")
    try:
        for label in SIZES:
            for runner, wanted in (("flow", sizes), ("ldr", ldr_sizes)):
                if label not in wanted:
                    continue
                trace, outcome = run_case(runner, label, SIZES[label], args.workdir, api_url)
                results[(runner, label)] = (trace, outcome)
                report_case(runner, label, SIZES[label], trace, outcome)
                failed = failed or not outcome["ok"] or trace.returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=60)
    report_targets(results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
