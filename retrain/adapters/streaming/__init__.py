"""The streaming data path: raw files → standard TFX artifacts in bounded memory.

TFX's Beam executors on the Python DirectRunner keep stage outputs in memory, so a 2 GB file
grows the process tree past 15 GB. This package writes the same artifacts (Examples as
sharded gzipped tf.Example TFRecords, ExampleStatistics as `FeatureStats.pb`) by streaming
record batches through a pool of worker processes, one *unit* of input at a time:

- `csv_units`: a CSV file cut into byte ranges at row boundaries (quote-aware), header and
  column types read once, each range parsed by pyarrow's streaming reader.
- `sources`: the units of CSV, Parquet and TFRecord inputs and their record batches.
- `encode`: record batches → tf.Example bytes, serialized the way TFX's hash split sees them.
- `example_gen`: one unit → its train/eval TFRecord shards; the whole stage over a pool.
- `statistics`: TFDV's combiner generators fed record batches per shard, merged in process.
- `sample`: a bounded, evenly spread sample of a split (Transform's analysis input).
- `pool`: the worker pool (spawned processes, results in order, progress per unit).

Memory is bounded by (workers × unit block size), not by rows. Imports of pyarrow, tfx_bsl,
TensorFlow and TFDV happen inside functions: this package is imported by stage cores.
"""
