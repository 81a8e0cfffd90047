"""An evenly spread sample of one split of an Examples artifact, as an Examples artifact.

tf.Transform's analyzers run on Beam; on the DirectRunner they hold their input in memory.
Analysing a bounded sample keeps Transform's memory flat in the data's size. Every shard
keeps every k-th record, k chosen from the split's size so that about `max_rows` remain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from retrain.adapters.streaming.example_gen import examples_artifact, shard_path
from retrain.adapters.streaming.pool import run_units
from retrain.adapters.streaming.records import RecordWriter, read_records
from retrain.adapters.streaming.sources import UNIT_BYTES
from retrain.domain.refs import ArtifactRef

@dataclass(frozen=True)
class SampleJob:
    """One shard, its stride, and where its sample goes."""

    source: str
    target: str
    stride: int
    size: int


@dataclass(frozen=True)
class SampleResult:
    """Records read and kept from one shard."""

    read: int
    kept: int


def sample_shard(job: SampleJob) -> SampleResult:
    """Keep records 0, k, 2k, … of one shard."""
    writer = RecordWriter(job.target)
    kept: list[bytes] = []
    read = 0
    try:
        for read, record in enumerate(read_records(job.source), start=1):
            if (read - 1) % job.stride == 0:
                kept.append(record)
                if len(kept) == 8192:
                    writer.write_batch(kept)
                    kept = []
        writer.write_batch(kept)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return SampleResult(read=read, kept=writer.records)


def estimate_records(files: list[str], sizes: dict[str, int]) -> int:
    """Records in the files: the first file's count, scaled by compressed size."""
    counted = sum(1 for _ in read_records(files[0]))
    return max(1, round(counted * sum(sizes.values()) / max(sizes[files[0]], 1)))


def sample_split(
    examples: ArtifactRef, split: str, max_rows: int, sample_uri: str,
    workers: int | None = None, progress: Callable[[int, int], None] | None = None,
    unit_bytes: int = UNIT_BYTES,
) -> tuple[ArtifactRef, int]:
    """An Examples artifact at `sample_uri` whose `split` holds about `max_rows` rows
    (sampled in this process when the split is under a quarter of `unit_bytes`), and its
    row count; `examples` itself when the split is no larger than that."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(examples.split_uri(split))
    protocol = examples.uri.split("://")[0] + "://" if "://" in examples.uri else ""
    files = [protocol + path for path in sorted(fs.glob(f"{base}/*"))]
    if not files:
        raise ValueError(f"split {split!r} of {examples.uri} holds no files")
    sizes = {path: fs.size(path[len(protocol):]) for path in files}
    records = estimate_records(files, sizes)
    if records <= max_rows:  # the whole split is the sample: nothing to copy
        return examples, records
    stride = math.ceil(records / max_rows)
    jobs = [
        SampleJob(source=path, target=shard_path(sample_uri, split, index, len(files)),
                  stride=stride, size=sizes[path])
        for index, path in enumerate(files)
    ]
    total = sum(sizes.values())
    results = run_units(sample_shard, jobs, workers, progress, size=lambda job: job.size,
                        inline=total <= unit_bytes // 4)
    return examples_artifact(sample_uri, [split]), sum(result.kept for result in results)
