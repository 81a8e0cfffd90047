"""Record batches → serialized tf.Examples, and TFX's hash split of them.

TFX's CSV ExampleGen builds each tf.Example in Python and assigns its split from
sha256(example.SerializeToString(deterministic=True)). tfx_bsl's C++ encoder is ~10x faster
but writes a row's features in hash-map order. So each column is encoded on its own (one
`Features` entry per row) and a row's entries are joined in sorted name order, which is
exactly the deterministic serialization: the same bytes, hence the same split, as TFX's.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any, Sequence

_VARINTS: list[bytes] = []


def _varint(value: int) -> bytes:
    if value < len(_VARINTS):
        return _VARINTS[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_VARINTS.extend(_varint(value) for value in range(1 << 14))


def _skip_varint(data: bytes, position: int) -> int:
    while data[position] & 0x80:
        position += 1
    return position + 1


def feature_lists(batch: Any) -> Any:
    """Each column as a list column (one value per row; an empty cell → an empty list).

    An empty list, not a missing feature: TFX's CSV reader writes an empty int64/float/bytes
    list for an empty cell, and so the statistics count it the same way.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = batch.num_rows
    dense = pa.array(np.arange(rows + 1, dtype=np.int32))
    columns = []
    for column in batch.columns:
        if column.null_count == 0:
            columns.append(pa.ListArray.from_arrays(dense, column))
            continue
        valid = np.asarray(column.is_valid(), dtype=np.int32)
        offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
        columns.append(pa.ListArray.from_arrays(offsets, pc.drop_null(column)))
    return pa.RecordBatch.from_arrays(columns, batch.schema.names)


class ExampleEncoder:
    """Serializes list-column record batches as deterministic tf.Example bytes."""

    def __init__(self) -> None:
        from tfx_bsl.coders import example_coder

        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def entries(self, batch: Any, name: str) -> list[bytes]:
        """Per row: the `Features` bytes of the one feature `name` (b"" if absent)."""
        import pyarrow as pa

        column = pa.RecordBatch.from_arrays([batch.column(name)], [name])
        # A one-feature Example is b"\n" + varint(len(Features)) + Features; below 130
        # bytes that varint is one byte.
        return [
            record[2:] if 0 < len(record) < 130 else record[_skip_varint(record, 1):] if record
            else b""
            for record in self._encoder.encode(column)
        ]

    def encode(self, batch: Any) -> tuple[list[bytes], dict[str, list[bytes]]]:
        """(serialized examples, per-column entries) of a batch of list columns."""
        names = sorted(batch.schema.names)
        per_column = {name: self.entries(batch, name) for name in names}
        varint = _varint
        records = []
        for parts in zip(*(per_column[name] for name in names)):
            body = b"".join(parts)
            records.append(b"\n" + varint(len(body)) + body if body else b"")
        return records, per_column


def feature_value(entry: bytes) -> bytes:
    """The serialized `Feature` inside one `Features` entry (TFX's partition-feature key)."""
    if not entry:
        return b""
    position = _skip_varint(entry, 1)  # tag 1 (map entry), its length
    position += 1  # key tag
    key_end = _skip_varint(entry, position)
    key_length = _decode_varint(entry, position)
    position = key_end + key_length + 1  # value tag
    return entry[_skip_varint(entry, position):]


def _decode_varint(data: bytes, position: int) -> int:
    value = shift = 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7
        position += 1


def cumulative(buckets: Sequence[int]) -> list[int]:
    """Hash buckets per split as TFX's running totals."""
    totals, running = [], 0
    for count in buckets:
        running += count
        totals.append(running)
    return totals


def split_of(keys: Sequence[bytes], totals: Sequence[int]) -> list[int]:
    """The split index of each key: TFX's int(sha256(key)) % buckets, then bisect."""
    modulus = totals[-1]
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes
    right = bisect.bisect
    return [right(totals, from_bytes(sha256(key).digest(), "big") % modulus) for key in keys]
