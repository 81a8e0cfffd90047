"""TFRecord files without TensorFlow: framing, masked CRC32C, gzip; temp name, then rename.

Workers that only move bytes need not import TensorFlow (seconds and hundreds of MB each);
the format is TFRecord's own (length, masked crc of length, data, masked crc of data).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Iterator

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
# Level 1: about 3x faster than zlib's default for 25% larger files; readers do not care.
COMPRESSION_LEVEL = 1
READ_BYTES = 4 << 20


class CorruptRecordError(ValueError):
    """A TFRecord file whose framing or checksums do not hold."""


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_HEADERS: dict[int, bytes] = {}


def _header(size: int) -> bytes:
    """Length and its masked crc; records of a data set share few lengths, so cached."""
    header = _HEADERS.get(size)
    if header is None:
        length = _LENGTH.pack(size)
        header = length + _CRC.pack(_masked_crc(length))
        if len(_HEADERS) < 65_536:
            _HEADERS[size] = header
    return header


def frame(record: bytes) -> bytes:
    """One record as TFRecord bytes."""
    return b"".join((_header(len(record)), record, _CRC.pack(_masked_crc(record))))


class RecordWriter:
    """Writes gzipped TFRecords to `<path>.tmp-*`, renamed to `path` by `close()`."""

    def __init__(self, path: str):
        import uuid

        import fsspec

        self.path = path
        self.records = 0
        self._fs, self._final = fsspec.core.url_to_fs(path)
        self._temp = f"{self._final}.tmp-{uuid.uuid4().hex[:8]}"
        self._fs.makedirs(self._fs._parent(self._final), exist_ok=True)
        self._handle = self._fs.open(self._temp, "wb")
        self._zip = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, 31)

    def write_batch(self, records: list[bytes]) -> None:
        """Append a list of records."""
        if records:
            self._handle.write(self._zip.compress(b"".join(map(frame, records))))
            self.records += len(records)

    def close(self) -> None:
        """Finish the gzip stream and move the file to its final name."""
        self._handle.write(self._zip.flush())
        self._handle.close()
        self._fs.mv(self._temp, self._final)

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._handle.close()
        finally:
            if self._fs.exists(self._temp):
                self._fs.rm(self._temp)


def read_records(path: str, verify: bool = True) -> Iterator[bytes]:
    """Records of a TFRecord file (gzip when the name ends in .gz), checksums verified."""
    import fsspec

    decompress: Any = zlib.decompressobj(31) if path.endswith(".gz") else None
    buffer = b""
    position = 0
    with fsspec.open(path, "rb") as handle:
        while True:
            raw = handle.read(READ_BYTES)
            if decompress is None:
                chunk = raw
            else:
                chunk = decompress.decompress(raw) if raw else decompress.flush()
            if not raw and not chunk:
                break
            buffer = buffer[position:] + chunk
            position = 0
            while len(buffer) - position >= 12:
                (length,) = _LENGTH.unpack_from(buffer, position)
                end = position + 12 + length + 4
                if end > len(buffer):
                    break
                record = buffer[position + 12: end - 4]
                if verify and (
                    _CRC.unpack_from(buffer, position + 8)[0]
                    != _masked_crc(buffer[position: position + 8])
                    or _CRC.unpack_from(buffer, end - 4)[0] != _masked_crc(record)
                ):
                    raise CorruptRecordError(f"{path}: a record fails its checksum")
                yield record
                position = end
    if len(buffer) - position:
        raise CorruptRecordError(f"{path}: ends inside a record ({len(buffer) - position} bytes)")
