"""Benchmark of the synthetic data generator: throughput and peak memory per row count.

Usage (from the repository root)::

    .venv/bin/python benchmarks/synthetic_data.py                 # 100k and 1M rows, csv + parquet
    .venv/bin/python benchmarks/synthetic_data.py --with-10m      # also 10M rows
    .venv/bin/python benchmarks/synthetic_data.py --rows 1000000 --formats parquet \
        --buyers 50000 --products 20000 --chunk-rows 1000000

Each (rows, format) case runs in a fresh interpreter, because ``ru_maxrss`` is a
process-lifetime peak: measured in one process, the largest case would mask the others.
The baseline column is the same child process after imports, before generating; the
difference between a case's peak RSS and the baseline is what generation itself costs,
and it should not grow with the row count.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(rows: int, file_format: str, catalogue: dict[str, int]) -> dict[str, object]:
    """Generate one data set into a temporary directory; returns timing and memory figures."""
    from synthetic import SyntheticConfig, generate

    baseline = _peak_rss_mib()
    config = SyntheticConfig(rows=rows, format=file_format, **catalogue)
    with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as out_dir:
        started = time.perf_counter()
        dataset = generate(config, out_dir)
        elapsed = time.perf_counter() - started
        size = sum(path.stat().st_size for path in dataset.files)
    return {
        "rows": rows,
        "format": file_format,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rows / elapsed),
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "files": len(dataset.files),
        "mib_on_disk": round(size / 2**20, 1),
    }


def _run_in_child(rows: int, file_format: str, catalogue: dict[str, int]) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(rows), file_format]
    for name, value in catalogue.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the benchmark script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="row counts to run"
    )
    parser.add_argument("--with-10m", action="store_true", help="also run 10,000,000 rows")
    parser.add_argument(
        "--formats", nargs="+", default=["csv", "parquet"], choices=["csv", "parquet", "tfrecord"]
    )
    parser.add_argument("--buyers", type=int, help="catalogue size (default: config default)")
    parser.add_argument("--products", type=int, help="catalogue size (default: config default)")
    parser.add_argument("--categories", type=int, help="number of categories")
    parser.add_argument("--cities", type=int, help="number of cities")
    parser.add_argument("--chunk-rows", type=int, help="rows sampled per in-memory chunk")
    parser.add_argument("--child", nargs=2, metavar=("ROWS", "FORMAT"), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run every case in a child process and print one line per case."""
    args = build_parser().parse_args(argv)
    # Run as a plain script, the repository root is not on sys.path.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    catalogue = {
        name: getattr(args, name)
        for name in ("buyers", "products", "categories", "cities", "chunk_rows")
        if getattr(args, name) is not None
    }
    if args.child:
        print(json.dumps(run_case(int(args.child[0]), args.child[1], catalogue)))
        return 0

    row_counts = list(args.rows) + ([10_000_000] if args.with_10m else [])
    print(f"config overrides: {catalogue or 'none'}")
    print(
        f"{'rows':>11} {'format':>8} {'seconds':>8} {'rows/s':>10} {'base MiB':>9} "
        f"{'peak MiB':>9} {'files':>5} {'disk MiB':>9}"
    )
    for rows in row_counts:
        for file_format in args.formats:
            r = _run_in_child(rows, file_format, catalogue)
            print(
                f"{r['rows']:>11,} {r['format']:>8} {r['seconds']:>8.2f} {r['rows_per_s']:>10,} "
                f"{r['baseline_rss_mib']:>9.1f} {r['peak_rss_mib']:>9.1f} {r['files']:>5} "
                f"{r['mib_on_disk']:>9.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
