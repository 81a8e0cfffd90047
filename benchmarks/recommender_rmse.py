"""Benchmark: a config-built TFRS rating model (ranking, or multitask's rating head) vs its
floor, a peer and the planted oracle, on the same eval rows.

Usage (from the repository root)::

    .venv/bin/python benchmarks/recommender_rmse.py                        # 1M rows, ranking
    .venv/bin/python benchmarks/recommender_rmse.py --rows 200000 --seed 123 --zipf 1.2
    .venv/bin/python benchmarks/recommender_rmse.py --model multitask --rows 200000
    .venv/bin/python benchmarks/recommender_rmse.py --rows 20000 --skip-model

Generates planted synthetic interactions (`synthetic/`), runs the whole `training-pipeline`
flow with `recommender_config(..., "ranking" | "multitask")` and puts the Evaluator's RMSE on
the eval split beside, on the very same rows: the planted mean rating (the oracle,
`synthetic.oracle_rating`: no model can do better on average), the train split's mean rating
(the floor: the Evaluator's trivial predictor) and a biased matrix factorisation tuned on the
train split alone (`peers.py`). Gap closed = (floor - RMSE) / (floor - oracle RMSE). A
multitask run also prints its recall@100 against the oracle and the most-popular list.
`--skip-model` leaves the flow out (the split is written by the flow's ExampleGen code).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import peers
from recommender_recall import (
    PeakRss,
    _latest,
    add_overrides_argument,
    planted_data,
    split_columns,
    with_overrides,
    write_examples,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
K = 100
COLUMNS = ("buyer_id", "product_id", "rating")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["ranking", "multitask"], default="ranking")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic data and of the factorisation")
    parser.add_argument("--zipf", type=float, default=None, metavar="S",
                        help="Zipf exponent of product popularity; default: none")
    # The product's own settings (recommender_config's batch 256, ModelConfig's Adagrad at
    # TrainingParams' 0.1), 5 epochs (TrainingParams' default).
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--optimizer", choices=["adagrad", "adam", "sgd"], default="adagrad")
    add_overrides_argument(parser)
    parser.add_argument("--skip-model", action="store_true",
                        help="leave the training flow out: oracle, floor and peer only")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep everything here.")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="retrain-rmse-"))
    dataset = planted_data(args, workdir)
    if dataset is None:
        return 2

    from synthetic import load_planted, oracle_rating, oracle_recall_at_k

    from retrain.domain.examples import recommender_config

    metrics = [{"class_name": "rmse", "upper_bound": 10.0}]
    if args.model == "multitask":
        metrics.append({"class_name": "recall_at_100", "lower_bound": 0.0})
    config = recommender_config(
        dataset.out_dir, args.model,
        model_name=f"rmse-benchmark-{args.model}",
        input={"format": "parquet", "pattern": "*.parquet"},
        pipeline_root=str(workdir / "pipelines"),
        pusher={"serving_base": str(workdir / "serving")},
        model={"optimizer": {"name": args.optimizer}},
        training={"epochs": args.epochs, "batch_size": args.batch_size,
                  "learning_rate": args.learning_rate},
        evaluator={"metrics": metrics},
    )
    config = with_overrides(config, args.overrides)
    summary = None
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

        root = workdir / "pipelines" / f"rmse-benchmark-{args.model}"
        epochs = read_epochs(str(_latest(root / "Trainer", "model_run")))
        examples_uri = str(_latest(root / "ExampleGen", "examples"))
        print()
        print(f"flow wall time            {flow_seconds:8.1f} s")
        for timing in summary.stages:
            print(f"  {timing.stage:<17} {timing.state:<10} {timing.seconds:7.1f} s")
        for e in epochs:
            shown = {k: round(v, 4) for k, v in e.metrics.items()
                     if k in ("loss", "val_loss", "val_rmse", "val_recall_at_100")}
            print(f"  epoch {e.epoch}: {e.seconds:6.1f} s {shown}")
        print(f"peak RSS (process tree)   {rss.peak / 2**20:8.0f} MiB")

    planted = load_planted(dataset.factors_path)
    train_buyer_ids, train_product_ids, train_ratings = split_columns(examples_uri, "train",
                                                                      COLUMNS)
    eval_buyer_ids, eval_product_ids, eval_ratings = split_columns(examples_uri, "eval", COLUMNS)
    train_buyers = planted.buyer_index(train_buyer_ids)
    train_products = planted.product_index(train_product_ids)
    eval_buyers = planted.buyer_index(eval_buyer_ids)
    eval_products = planted.product_index(eval_product_ids)

    oracle = peers.rmse(oracle_rating(planted, eval_buyer_ids, eval_product_ids), eval_ratings)
    floor = peers.rmse(np.full(len(eval_ratings), train_ratings.mean()), eval_ratings)
    tuning = peers.tune_biased_mf(train_buyers, train_products, train_ratings,
                                  planted.num_buyers, planted.num_products, seed=args.seed)
    mf = peers.rmse(tuning.model.predict(eval_buyers, eval_products), eval_ratings)

    errors = {"oracle (planted mean)": oracle}
    if summary is not None:
        errors[f"model ({args.model})"] = summary.metrics["rmse"]
    errors["biased MF"] = mf
    errors["train mean"] = floor
    print()
    print(f"train rows {len(train_ratings)}, eval rows {len(eval_ratings)} (the Evaluator's)")
    print(peers.rmse_report(errors, oracle="oracle (planted mean)", floor="train mean"))
    print(f"biased MF chosen          {tuning.model.params}")
    print(f"  validation RMSE         {-tuning.selection.best_score:.4f} on "
          f"{tuning.validation_rows} held-out train rows ({len(tuning.selection.scores)} grid "
          f"points, {tuning.tune_seconds:.1f} s)")
    if summary is not None and args.model == "multitask":
        recall = summary.metrics[f"recall_at_{K}"]
        popular = peers.recall_at_k(
            peers.most_popular_scorer(train_products, planted.num_products),
            eval_buyers, eval_products, K)
        top = oracle_recall_at_k(planted, eval_buyer_ids, eval_product_ids, k=K)
        print(peers.report({"oracle (planted)": top, "model (multitask)": recall,
                            "most popular": popular},
                           oracle="oracle (planted)", popularity="most popular", k=K))
    print(f"workdir                   {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
