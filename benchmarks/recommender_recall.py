"""Benchmark: a config-built TFRS retrieval model vs the planted ground truth and two peers.

Usage (from the repository root)::

    .venv/bin/python benchmarks/recommender_recall.py                 # 1M interactions
    .venv/bin/python benchmarks/recommender_recall.py --rows 100000 --epochs 3
    .venv/bin/python benchmarks/recommender_recall.py --rows 20000 --zipf 1.2 --skip-model

Generates planted synthetic interactions (`synthetic/`, optionally Zipf-skewed product
popularity), runs the whole `training-pipeline` flow with `recommender_config(...,
"retrieval")` and compares the Evaluator's recall@100 on the eval split (exact, over the full
product corpus) with, on the very same eval rows and by the same recall definition: the
oracle recall@100 of the planted factors, the most-popular list of the train split, and
implicit's ALS tuned on the train split alone (`peers.py`). Target: model ≥ 0.9 × oracle.
`--fit posterior` trains the model with the Trainer's posterior fit instead of SGD
(`model.fit: posterior`, the config `retrain.domain.examples.POSTERIOR_RETRIEVAL` merges in).
`--skip-model` leaves the flow out: the train/eval split is then written by the code of the
flow's (streaming) ExampleGen, so the rows are the ones the model would be scored on.

Also prints the training throughput (train rows × epochs / summed epoch seconds; epoch
seconds include the per-epoch validation) and the peak RSS of this process and its
children (Beam workers, Prefect's ephemeral server), polled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import peers

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


def split_columns(examples_uri: str, split: str, columns: tuple[str, ...]) -> list[np.ndarray]:
    """These columns of every row in one split of an Examples artifact (ids as str)."""
    from tfx_bsl.coders import example_coder

    from retrain.adapters.streaming.records import read_records

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    parts: list[list[np.ndarray]] = [[] for _ in columns]
    for path in sorted(Path(examples_uri, f"Split-{split}").iterdir()):
        records = list(read_records(str(path)))
        if not records:
            continue
        batch = decoder.DecodeBatch(records)
        for column, out in zip(columns, parts):
            values = np.array(batch.column(batch.schema.get_field_index(column)).flatten()
                              .to_pylist(), dtype=object)
            out.append(values.astype(float) if column == "rating" else values.astype(str))
    return [np.concatenate(out) for out in parts]


def split_pairs(examples_uri: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(buyer_id, product_id) of every row in one split of an Examples artifact."""
    buyers, products = split_columns(examples_uri, split, ("buyer_id", "product_id"))
    return buyers, products


def write_examples(config, files: list[Path], examples_uri: Path) -> str:
    """Train/eval Examples as the flow's streaming ExampleGen writes them (TFX's hash split
    of each row's serialized tf.Example), for runs that leave the flow out."""
    from retrain.adapters.streaming.example_gen import SplitRule, generate_examples

    split = config.input.split
    if split.strategy != "hash":
        raise ValueError(f"only the hash split is reproduced here, not {split.strategy}")
    rule = SplitRule(names=("train", "eval"), buckets=(split.train_buckets, split.eval_buckets),
                     partition_feature=split.partition_feature)
    if examples_uri.exists():
        shutil.rmtree(examples_uri)
    generate_examples(config.input.format, [str(f) for f in files], str(examples_uri), rule,
                      workers=1)
    return str(examples_uri)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _latest(stage_dir: Path, output: str) -> Path:
    """The most recently written output of a stage (a reused workdir keeps older ones)."""
    return max(stage_dir.glob(f"*/{output}"), key=lambda path: path.stat().st_mtime)


def planted_data(args: argparse.Namespace, workdir: Path):
    """Point this process's Prefect and retrain homes into `workdir`, then generate the
    planted data there (`--rows --buyers --products --seed --zipf`), or reuse it; None (after
    one line) when the workdir holds another data set."""
    os.environ.setdefault("RETRAIN_HOME", str(workdir / "home"))
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from synthetic import SyntheticConfig, generate, read_dataset

    started = time.monotonic()
    data = workdir / "data"
    wanted = SyntheticConfig(rows=args.rows, buyers=args.buyers, products=args.products,
                             seed=args.seed, product_popularity_zipf=args.zipf,
                             format="parquet", chunk_rows=1_000_000)
    if (data / "manifest.json").exists():
        dataset = read_dataset(data)
        if dataset.config != wanted:
            print(f"{data} holds another data set ({dataset.config}); use another --workdir")
            return None
    else:
        dataset = generate(wanted, data)
    skew = f", zipf {args.zipf}" if args.zipf is not None else ""
    print(f"data: {args.rows} rows, {args.buyers} buyers x {args.products} products, "
          f"seed {args.seed}{skew} ({time.monotonic() - started:.1f} s)", flush=True)
    return dataset


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    """`--overrides JSON`: more config, deep-merged over the benchmark's."""
    parser.add_argument("--overrides", type=json.loads, default={}, metavar="JSON",
                        help="more config, deep-merged over the benchmark's (e.g. "
                        "'{\"model\": {\"sampled_negatives\": 256}}')")


def with_overrides(config, overrides: dict):
    """`config` with `overrides` deep-merged over it (printed), validated again."""
    if not overrides:
        return config
    from retrain.domain.config import deep_merge

    values = config.model_dump(mode="json")
    deep_merge(values, overrides)
    print(f"overrides: {json.dumps(overrides)}", flush=True)
    return type(config).model_validate(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic data and of ALS (hold-out draw, initial "
                             "factors)")
    parser.add_argument("--zipf", type=float, default=None, metavar="S",
                        help="Zipf exponent of product popularity (synthetic's "
                             "product_popularity_zipf); default: none")
    # The product's own settings (recommender_config's batch 256, ModelConfig's Adagrad at
    # TrainingParams' 0.1), 5 epochs (TrainingParams' default).
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--optimizer", choices=["adagrad", "adam", "sgd"], default="adagrad")
    parser.add_argument("--fit", choices=["sgd", "posterior"], default="sgd",
                        help="the model's fit: sgd (Keras epochs) or posterior (sampled "
                             "factor model with ratings and quantities; examples.py's "
                             "POSTERIOR_RETRIEVAL)")
    add_overrides_argument(parser)
    parser.add_argument("--skip-model", action="store_true",
                        help="leave the training flow out: oracle, ALS and most-popular only")
    parser.add_argument("--als-factors", type=_ints, default=peers.ALS_FACTORS,
                        help="ALS grid: factors, comma-separated")
    parser.add_argument("--als-regularization", type=_floats,
                        default=peers.ALS_REGULARIZATION,
                        help="ALS grid: regularization, comma-separated")
    parser.add_argument("--als-iterations", type=_ints, default=peers.ALS_ITERATIONS,
                        help="ALS grid: iterations, comma-separated")
    parser.add_argument("--als-alpha", type=_floats, default=peers.ALS_ALPHA,
                        help="ALS grid: alpha (confidence scaling), comma-separated")
    parser.add_argument("--als-threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep everything here.")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="retrain-recall-"))
    dataset = planted_data(args, workdir)
    if dataset is None:
        return 2

    from synthetic import load_planted, oracle_recall_at_k
    from synthetic.oracle import expected_oracle_recall_at_k
    from synthetic.posterior import known_products_scores

    from retrain.domain.examples import recommender_config

    config = recommender_config(
        dataset.out_dir, "retrieval",
        model_name="recall-benchmark",
        input={"format": "parquet", "pattern": "*.parquet"},
        pipeline_root=str(workdir / "pipelines"),
        pusher={"serving_base": str(workdir / "serving")},
        model={"optimizer": {"name": args.optimizer}},
        training={"epochs": args.epochs, "batch_size": args.batch_size,
                  "learning_rate": args.learning_rate},
        evaluator={"metrics": [{"class_name": "recall_at_100", "lower_bound": 0.0}]},
    )
    if args.fit == "posterior":
        from retrain.domain.examples import POSTERIOR_RETRIEVAL

        config = with_overrides(config, POSTERIOR_RETRIEVAL)
    config = with_overrides(config, args.overrides)
    model = None
    if args.skip_model:
        examples_uri = write_examples(config, dataset.files, workdir / "examples")
    else:
        from flows.training_pipeline import training_pipeline

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
        examples_uri = str(_latest(root / "ExampleGen", "examples"))
        model = summary.metrics[f"recall_at_{K}"]

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

    planted = load_planted(dataset.factors_path)
    train_buyer_ids, train_product_ids = split_pairs(examples_uri, "train")
    eval_buyer_ids, eval_product_ids = split_pairs(examples_uri, "eval")
    train_buyers = planted.buyer_index(train_buyer_ids)
    train_products = planted.product_index(train_product_ids)
    eval_buyers = planted.buyer_index(eval_buyer_ids)
    eval_products = planted.product_index(eval_product_ids)

    oracle = oracle_recall_at_k(planted, eval_buyer_ids, eval_product_ids, k=K)
    expected = expected_oracle_recall_at_k(planted, k=K)
    popularity = peers.recall_at_k(
        peers.most_popular_scorer(train_products, planted.num_products),
        eval_buyers, eval_products, K)
    grid = peers.als_grid(args.als_factors, args.als_regularization, args.als_iterations,
                          args.als_alpha)
    tuning = peers.tune_als(train_buyers, train_products, planted.num_buyers,
                            planted.num_products, k=K, seed=args.seed, grid=grid,
                            threads=args.als_threads)
    als = peers.recall_at_k(tuning.model.score, eval_buyers, eval_products, K)
    ceiling_started = time.monotonic()
    ceiling = peers.recall_at_k(known_products_scores(planted, train_buyers, train_products),
                                eval_buyers, eval_products, K)
    ceiling_seconds = time.monotonic() - ceiling_started

    recalls = {"oracle (planted)": oracle, "ceiling (products known)": ceiling}
    if model is not None:
        recalls[f"model ({args.fit} fit)"] = model
    recalls["ALS (implicit)"] = als
    recalls["most popular"] = popularity

    print()
    cold = ~np.isin(eval_buyers, train_buyers)
    print(f"train rows {len(train_buyers)}, eval rows {len(eval_buyers)} (the Evaluator's), "
          f"{cold.mean():.1%} of them of buyers without train rows; "
          f"oracle closed form {expected:.4f}, random {K / args.products:.4f}")
    print(peers.report(recalls, oracle="oracle (planted)", popularity="most popular", k=K))
    print(f"ceiling                   each buyer's factor inferred from its train rows, every "
          f"product's planted ({ceiling_seconds:.1f} s)")
    print(f"ALS chosen                {tuning.model.params}")
    print(f"  validation recall@{K}   {tuning.selection.best_score:.4f} on "
          f"{tuning.validation_rows} held-out train rows ({len(grid)} grid points, "
          f"{tuning.tune_seconds:.1f} s)")
    edges = peers.grid_edges(tuning.model.params, grid)
    if edges:
        print(f"  at the grid's edge      {', '.join(edges)}: the optimum may lie beyond")
    print(f"  fit on the train split  {tuning.model.fit_seconds:.2f} s "
          f"({args.als_threads} threads)")
    if model is not None:
        ratio = model / oracle
        print(f"model / oracle            {ratio:.3f}   target >= {TARGET}: "
              f"{'PASS' if ratio >= TARGET else 'MISS'}")
    print(f"workdir                   {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
