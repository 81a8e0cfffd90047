"""Command line: ``python -m synthetic --rows 10000 --format csv --out DIR``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from pydantic import ValidationError

from synthetic.config import SyntheticConfig
from synthetic.core import generate

# CLI flag -> config field; flags left unset fall back to the config's defaults.
_INT_OPTIONS = (
    "rows",
    "buyers",
    "products",
    "categories",
    "cities",
    "latent_dim",
    "seed",
    "days",
    "rows_per_file",
    "chunk_rows",
)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the generator CLI."""
    parser = argparse.ArgumentParser(
        prog="python -m synthetic",
        description="Generate synthetic B2B interactions from planted latent factors.",
    )
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--format", choices=["csv", "parquet", "tfrecord"], help="file format")
    for name in _INT_OPTIONS:
        field = SyntheticConfig.model_fields[name]
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=field.description)
    parser.add_argument("--start-date", help="first day of history, YYYY-MM-DD (UTC)")
    parser.add_argument("--temperature", type=float, help="softmax temperature of product choice")
    parser.add_argument(
        "--product-popularity-zipf",
        type=float,
        metavar="S",
        help=SyntheticConfig.model_fields["product_popularity_zipf"].description,
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a data set already in --out"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; prints a one-line summary and returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values = {
        name: getattr(args, name)
        for name in (
            *_INT_OPTIONS, "format", "start_date", "temperature", "product_popularity_zipf"
        )
        if getattr(args, name) is not None
    }
    try:
        config = SyntheticConfig(**values)
    except ValidationError as error:
        parser.error(str(error))
    started = time.perf_counter()
    try:
        dataset = generate(config, args.out, overwrite=args.overwrite)
    except FileExistsError:
        parser.error(
            f"{args.out} already holds a synthetic data set; pass --overwrite to replace it"
        )
    elapsed = time.perf_counter() - started
    print(
        f"wrote {dataset.rows} rows to {len(dataset.files)} {dataset.format} file(s) in "
        f"{dataset.out_dir} ({dataset.file_pattern}) in {elapsed:.2f}s; "
        f"planted factors: {dataset.factors_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
