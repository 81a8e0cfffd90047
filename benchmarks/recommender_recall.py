"""Benchmark: a config-built TFRS retrieval model vs the planted ground truth.

Usage (from the repository root)::

    .venv/bin/python benchmarks/recommender_recall.py                 # 1M interactions
    .venv/bin/python benchmarks/recommender_recall.py --rows 100000 --epochs 3

Generates planted synthetic interactions (`synthetic/`), runs the whole `training-pipeline`
flow with `recommender_config(..., "retrieval")` and compares the Evaluator's recall@100 on
the eval split (exact, over the full product corpus) with the oracle recall@100 of the
planted factors on the very same eval rows. Target: model ≥ 0.9 × oracle.

Also prints the training throughput (train rows × epochs / summed epoch seconds; epoch
seconds include the per-epoch validation) and the peak RSS of this process and its
children (Beam workers, Prefect's ephemeral server), polled every 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
TARGET = 0.9
K = 100


class PeakRss:
    """Largest sum of RSS over this process and its descendants."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for proc in [self._proc, *self._proc.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def eval_pairs(examples_uri: str) -> tuple[list[str], list[str]]:
    """(buyer_id, product_id) of every row in ExampleGen's eval split."""
    import tensorflow as tf

    files = tf.io.gfile.glob(f"{examples_uri}/Split-eval/*")
    buyers, products = [], []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        buyers.append(feature["buyer_id"].bytes_list.value[0].decode())
        products.append(feature["product_id"].bytes_list.value[0].decode())
    return buyers, products


def _latest(stage_dir: Path, output: str) -> Path:
    """The most recently written output of a stage (a reused workdir keeps older ones)."""
    return max(stage_dir.glob(f"*/{output}"), key=lambda path: path.stat().st_mtime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--optimizer", choices=["adagrad", "adam", "sgd"], default="adam")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep everything here.")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="retrain-recall-"))
    os.environ.setdefault("RETRAIN_HOME", str(workdir / "home"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from synthetic import SyntheticConfig, generate, load_planted, oracle_recall_at_k
    from synthetic.oracle import expected_oracle_recall_at_k

    started = time.monotonic()
    data = workdir / "data"
    if not (data / "manifest.json").exists():
        generate(SyntheticConfig(rows=args.rows, buyers=args.buyers, products=args.products,
                                 format="parquet", chunk_rows=1_000_000), data)
    print(f"data: {args.rows} rows, {args.buyers} buyers x {args.products} products "
          f"({time.monotonic() - started:.1f} s)", flush=True)

    from flows.training_pipeline import training_pipeline
    from retrain.domain.examples import recommender_config

    config = recommender_config(
        data, "retrieval",
        model_name="recall-benchmark",
        input={"format": "parquet", "pattern": "*.parquet"},
        pipeline_root=str(workdir / "pipelines"),
        pusher={"serving_base": str(workdir / "serving")},
        model={"optimizer": {"name": args.optimizer}},
        training={"epochs": args.epochs, "batch_size": args.batch_size,
                  "learning_rate": args.learning_rate},
        evaluator={"metrics": [{"class_name": "recall_at_100", "lower_bound": 0.0}]},
    )
    flow_started = time.monotonic()
    with PeakRss() as rss:
        state = training_pipeline(config, return_state=True)
    flow_seconds = time.monotonic() - flow_started
    if not state.is_completed():
        print(f"run failed: {state.message}")
        return 2
    summary = state.result()

    from tasks.trainer.epochs import read_epochs

    root = workdir / "pipelines" / "recall-benchmark"
    epochs = read_epochs(str(_latest(root / "Trainer", "model_run")))
    train_rows = summary.rows["train"]
    epoch_seconds = sum(e.seconds for e in epochs)
    buyers, products = eval_pairs(str(_latest(root / "ExampleGen", "examples")))
    planted = load_planted(data / "_planted" / "planted_factors.npz")
    oracle = oracle_recall_at_k(planted, buyers, products, k=K)
    expected = expected_oracle_recall_at_k(planted, k=K)
    model = summary.metrics[f"recall_at_{K}"]
    ratio = model / oracle

    print()
    print(f"flow wall time            {flow_seconds:8.1f} s")
    for timing in summary.stages:
        print(f"  {timing.stage:<17} {timing.state:<10} {timing.seconds:7.1f} s")
    print(f"epochs                    {len(epochs)}")
    for e in epochs:
        shown = {k: round(v, 4) for k, v in e.metrics.items() if k in
                 ("loss", "val_loss", "val_recall_at_10", "val_recall_at_100")}
        print(f"  epoch {e.epoch}: {e.seconds:6.1f} s {shown}")
    print(f"training examples/s       {train_rows * len(epochs) / epoch_seconds:8.0f}")
    print(f"peak RSS (process tree)   {rss.peak / 2**20:8.0f} MiB")
    print(f"eval rows                 {len(buyers)}")
    print(f"recall@{K} model           {model:.4f}")
    print(f"recall@{K} oracle (eval)   {oracle:.4f}   (closed form {expected:.4f}, "
          f"random {K / args.products:.4f})")
    print(f"model / oracle            {ratio:.3f}   target >= {TARGET}: "
          f"{'PASS' if ratio >= TARGET else 'MISS'}")
    print(f"workdir                   {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
