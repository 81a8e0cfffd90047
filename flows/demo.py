"""The main job on the embedded default: synthetic data → training-pipeline → summary.

By default it trains the config-built two-tower retrieval model (buyer → product); its summary
gives recall@K beside the most-popular-items floor on the same eval rows (the trivial-baseline
rule). `--model user-module` trains the plain TFX user module instead.

`make demo` runs this with PREFECT_HOME under .retrain/, so Prefect, the pipeline root, the
serving directory and MLflow all live in local files. Safe to repeat: the data is generated
once and a re-run hits the stage cache.

Unless PREFECT_API_URL names a server, the run goes to the embedded default's long-lived
local server (`retrain/adapters/local_server.py`): started in the background by the first
demo, reused by the next, and its UI shows the run. `make stop` stops it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.training_pipeline import training_pipeline
from retrain.domain.examples import rating_config, recommender_config
from retrain.settings import get_settings
from tasks.shared.summary import render_text


def demo_data(rows: int, seed: int) -> Path:
    """Generate the synthetic interactions once under <home>/data."""
    from synthetic.config import SyntheticConfig
    from synthetic.core import generate, read_dataset

    out_dir = (get_settings().home / "data" / f"interactions-{rows}-seed{seed}").absolute()
    try:
        return read_dataset(out_dir).out_dir
    except (FileNotFoundError, ValueError):
        return generate(SyntheticConfig(rows=rows, seed=seed), out_dir, overwrite=True).out_dir


def main(argv: list[str] | None = None) -> int:
    """Run the main job and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="synthetic interactions")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument("--train-steps", type=int, default=500,
                        help="Trainer steps (user-module model)")
    parser.add_argument(
        "--model", choices=["retrieval", "ranking", "multitask", "user-module"],
        default="retrieval",
        help="retrieval (the default: the two-tower buyer → product model), ranking and "
        "multitask build a TFRS model from typed config; user-module trains "
        "synthetic/modules/rating_model.py, a plain TFX module (preprocessing_fn, run_fn)",
    )
    parser.add_argument("--ephemeral", action="store_true",
                        help="use Prefect's temporary in-process server instead of the local "
                        "long-lived one (nothing stays up; the run pays a server start)")
    args = parser.parse_args(argv)

    data = demo_data(args.rows, args.seed)
    # Thousands of rows: in-process Beam beats starting workers that each import TF.
    beam = {"args": ["--direct_running_mode=in_memory"]}
    if args.model == "user-module":
        config = rating_config(data, trainer={"train_steps": args.train_steps}, beam=beam)
    else:
        config = recommender_config(data, args.model, beam=beam)
    from retrain.adapters.local_server import LocalServerError, run_view, runs_api

    try:
        with runs_api(args.ephemeral) as server:
            if server is not None and server.started:
                print(server.started_note(), flush=True)
            state = training_pipeline(config, return_state=True)
            view = run_view(state.state_details.flow_run_id)
    except LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 5
    if view:
        print(f"run view: {view}")
    if state.is_failed():
        print(f"training-pipeline failed: {state.message}", file=sys.stderr)
        return 1
    print(render_text(state.result()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
