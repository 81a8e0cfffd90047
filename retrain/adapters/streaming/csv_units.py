"""A CSV file as units of work: header and types read once, byte ranges cut at row ends.

The cut is quote-aware (RFC 4180: a quote inside a quoted field is doubled, so a newline
ends a row exactly when the number of quotes before it is even), so quoted newlines never
straddle two units. Rows parse with pyarrow's streaming reader; a unit is at most
`unit_bytes` of the file, which bounds a worker's memory whatever the file's size.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator

BOM = b"\xef\xbb\xbf"
SCAN_BYTES = 8 << 20
SAMPLE_BYTES = 4 << 20
BLOCK_BYTES = 8 << 20


class DataFormatError(ValueError):
    """Input data that cannot be read as given; the message names file, column and line."""


class FeatureKind(str, Enum):
    """The tf.Example list a column becomes (TFX's CSV types)."""

    INT = "int"
    FLOAT = "float"
    BYTES = "bytes"


@dataclass(frozen=True)
class CsvLayout:
    """What every unit of one file shares: columns, their kinds, whether quotes occur."""

    path: str
    columns: tuple[str, ...]
    kinds: tuple[FeatureKind, ...]
    quoted: bool


@dataclass(frozen=True)
class CsvUnit:
    """Bytes [start, end) of a CSV file: whole rows, none of the header."""

    layout: CsvLayout
    start: int
    end: int
    first_line: int
    """1-based line number of the unit's first row in the file (the header is line 1)."""

    @property
    def size(self) -> int:
        """Bytes of the file this unit reads."""
        return self.end - self.start


def _open(path: str) -> Any:
    import fsspec

    return fsspec.open(path, "rb").open()


def file_size(path: str) -> int:
    """Size in bytes of a local or remote file."""
    import fsspec

    fs, fs_path = fsspec.core.url_to_fs(path)
    return int(fs.size(fs_path))


def read_header(path: str) -> tuple[tuple[str, ...], int]:
    """Column names (UTF-8 BOM stripped) and the byte offset where the data rows start."""
    with _open(path) as handle:
        head = handle.read(SAMPLE_BYTES)
    start = len(BOM) if head.startswith(BOM) else 0
    newline = head.find(b"\n", start)
    end = newline if newline >= 0 else len(head)
    line = head[start:end].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: the header line is not UTF-8 ({exc.reason})") from exc
    columns = tuple(next(csv.reader([text]), []))
    if not columns or not any(name.strip() for name in columns):
        raise DataFormatError(f"{path}: the first line holds no column names")
    blank = [index + 1 for index, name in enumerate(columns) if not name.strip()]
    if blank:
        raise DataFormatError(f"{path}: header column(s) {blank} have no name")
    seen: set[str] = set()
    repeated = sorted({name for name in columns if name in seen or seen.add(name)})
    if repeated:
        raise DataFormatError(f"{path}: header repeats column name(s) {repeated}")
    return columns, (newline + 1 if newline >= 0 else len(head))


def _row_end_before(data: bytes) -> int:
    """Offset just past the last newline of `data` that ends a row (even quote count)."""
    position = len(data)
    while True:
        newline = data.rfind(b"\n", 0, position)
        if newline < 0:
            return 0
        if data.count(b'"', 0, newline) % 2 == 0:
            return newline + 1
        position = newline


def infer_kinds(path: str, columns: tuple[str, ...],
                data_start: int) -> tuple[FeatureKind | None, ...]:
    """Each column's kind from the rows in the first few MB (INT, else FLOAT, else BYTES;
    None for a column with no value there).

    TFX's CSV reader infers over the whole file; a later value that does not fit the kind
    inferred here is reported by `batches` with its column and line.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with _open(path) as handle:
        handle.seek(data_start)
        sample = handle.read(SAMPLE_BYTES)
    if len(sample) == SAMPLE_BYTES:
        sample = sample[: _row_end_before(sample)]
    if not sample.strip():
        return tuple(None for _ in columns)
    table = pcsv.read_csv(
        pa.py_buffer(sample),
        read_options=pcsv.ReadOptions(column_names=list(columns)),
        # A malformed row is reported by `batches`, with its line; here it only is skipped.
        parse_options=pcsv.ParseOptions(newlines_in_values=b'"' in sample,
                                        invalid_row_handler=lambda row: "skip"),
        convert_options=_convert_options({}),
    )
    kinds = []
    for field in table.schema:
        if pa.types.is_integer(field.type):
            kinds.append(FeatureKind.INT)
        elif pa.types.is_floating(field.type):
            kinds.append(FeatureKind.FLOAT)
        elif pa.types.is_null(field.type):
            kinds.append(None)
        else:  # strings, and what TFX reads as strings: booleans, dates
            kinds.append(FeatureKind.BYTES)
    return tuple(kinds)


def unify(kinds: list[FeatureKind | None]) -> FeatureKind:
    """One kind for a column across files, as TFX infers over all of them."""
    seen = {kind for kind in kinds if kind is not None}
    if FeatureKind.BYTES in seen or not seen:
        return FeatureKind.BYTES
    return FeatureKind.FLOAT if FeatureKind.FLOAT in seen else FeatureKind.INT


def _convert_options(column_types: dict[str, Any]) -> Any:
    import pyarrow.csv as pcsv

    # Only an empty cell is missing, as in TFX ("NA" or "null" are values); no timestamps.
    return pcsv.ConvertOptions(
        column_types=column_types, null_values=[""], strings_can_be_null=True,
        quoted_strings_can_be_null=True, timestamp_parsers=[], check_utf8=False,
    )


def plan_units(path: str, unit_bytes: int) -> list[CsvUnit]:
    """Read the header, infer kinds and cut the file into units of about `unit_bytes`."""
    return plan_files([path], unit_bytes)


def plan_files(paths: list[str], unit_bytes: int) -> list[CsvUnit]:
    """Units of every file; the files must share a header, their kinds are unified.

    Cutting reads a file once (counting quotes and newlines at memchr speed); a file that
    fits one unit is not scanned.
    """
    headers = [(path, *read_header(path)) for path in paths]
    columns = headers[0][1]
    for path, other, _ in headers[1:]:
        if other != columns:
            raise DataFormatError(
                f"{path}: header {list(other)} differs from {headers[0][0]}'s {list(columns)}; "
                "files of one input must share their columns"
            )
    inferred = [infer_kinds(path, columns, start) for path, _, start in headers]
    kinds = tuple(unify([file_kinds[i] for file_kinds in inferred])
                  for i in range(len(columns)))
    units: list[CsvUnit] = []
    for path, _, data_start in headers:
        size = file_size(path)
        if size - data_start <= unit_bytes:
            layout = CsvLayout(path=path, columns=columns, kinds=kinds, quoted=True)
            units.append(CsvUnit(layout=layout, start=data_start, end=size, first_line=2))
            continue
        cuts, lines, quoted = _cut(path, data_start, size, unit_bytes)
        layout = CsvLayout(path=path, columns=columns, kinds=kinds, quoted=quoted)
        bounds = [data_start, *cuts, size]
        units.extend(
            CsvUnit(layout=layout, start=bounds[i], end=bounds[i + 1], first_line=lines[i])
            for i in range(len(bounds) - 1)
            if bounds[i + 1] > bounds[i]
        )
    return units


def _cut(path: str, data_start: int, size: int, unit_bytes: int) -> tuple[list[int], list[int], bool]:
    """Row-end offsets about `unit_bytes` apart, each unit's first line, whether quotes occur."""
    cuts: list[int] = []
    lines = [2]
    parity = newlines = 0
    quoted = False
    target = data_start + unit_bytes
    offset = data_start
    with _open(path) as handle:
        handle.seek(data_start)
        while offset < size:
            chunk = handle.read(SCAN_BYTES)
            if not chunk:
                break
            end = offset + len(chunk)
            while target < end:
                position = target - offset
                cut = None
                while True:
                    newline = chunk.find(b"\n", position)
                    if newline < 0:
                        break
                    if (parity + chunk.count(b'"', 0, newline)) % 2 == 0:
                        cut = newline
                        break
                    position = newline + 1
                if cut is None:  # no row ends in the rest of this chunk: look in the next
                    target = end
                    break
                cuts.append(offset + cut + 1)
                lines.append(2 + newlines + chunk.count(b"\n", 0, cut + 1))
                target = offset + cut + 1 + unit_bytes
            quotes = chunk.count(b'"')
            quoted = quoted or quotes > 0
            parity = (parity + quotes) % 2
            newlines += chunk.count(b"\n")
            offset = end
    return cuts, lines, quoted


def _arrow_type(kind: FeatureKind) -> Any:
    import pyarrow as pa

    return {FeatureKind.INT: pa.int64(), FeatureKind.FLOAT: pa.float32()}.get(kind, pa.binary())


def batches(unit: CsvUnit, block_bytes: int = BLOCK_BYTES) -> Iterator[Any]:
    """The unit's rows as Arrow record batches (INT int64, FLOAT float32, BYTES binary).

    A row with too many or too few fields, or a value that does not fit its column's kind,
    raises DataFormatError naming the file, the line and the column.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    layout = unit.layout
    with _open(layout.path) as handle:
        handle.seek(unit.start)
        data = handle.read(unit.size)
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "error"

    types = {name: _arrow_type(kind) for name, kind in zip(layout.columns, layout.kinds)}
    reader = None
    try:
        # Opening reads the first block already, so it can fail like any later block.
        reader = pcsv.open_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pcsv.ReadOptions(
                column_names=list(layout.columns), block_size=block_bytes, use_threads=False
            ),
            parse_options=pcsv.ParseOptions(
                newlines_in_values=layout.quoted, invalid_row_handler=on_invalid
            ),
            convert_options=_convert_options(types),
        )
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as exc:
        raise _describe(unit, data, exc, invalid) from None
    finally:
        if reader is not None:
            reader.close()


def _describe(unit: CsvUnit, data: bytes, exc: Exception, invalid: list[Any]) -> DataFormatError:
    """The first bad row of the unit as one message with file, line and column."""
    layout = unit.layout
    if invalid:
        row = invalid[0]
        line = unit.first_line + (row.number or 1) - 1
        return DataFormatError(
            f"{layout.path} line {line}: {row.actual_columns} field(s) where the header has "
            f"{row.expected_columns} ({', '.join(layout.columns)}): {row.text[:200]!r}"
        )
    text = str(exc)
    if "CSV conversion error" in text:
        found = _first_bad_value(unit, data)
        if found is not None:
            column, line, value = found
            kind = layout.kinds[layout.columns.index(column)]
            return DataFormatError(
                f"{layout.path} line {line}, column {column!r}: {value!r} is not "
                f"{'an integer' if kind is FeatureKind.INT else 'a number'}, like the "
                f"column's values in the first rows of the file"
            )
    return DataFormatError(f"{layout.path} (lines from {unit.first_line}): {text}")


def _fits(kind: FeatureKind, value: bytes) -> bool:
    try:
        (int if kind is FeatureKind.INT else float)(value)
    except ValueError:
        return False
    return True


def _first_bad_value(unit: CsvUnit, data: bytes) -> tuple[str, int, str] | None:
    """(column, line, value) of the first value that does not fit its column's kind."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    layout = unit.layout
    table = pcsv.read_csv(
        pa.py_buffer(data),
        read_options=pcsv.ReadOptions(column_names=list(layout.columns)),
        parse_options=pcsv.ParseOptions(newlines_in_values=layout.quoted),
        convert_options=_convert_options({name: pa.binary() for name in layout.columns}),
    )
    first: tuple[int, str, str] | None = None
    for name, kind in zip(layout.columns, layout.kinds):
        if kind is FeatureKind.BYTES:
            continue
        for row, value in enumerate(table.column(name).to_pylist()):
            if value is not None and value.strip() and not _fits(kind, value):
                if first is None or row < first[0]:
                    first = (row, name, value.decode("utf-8", "replace"))
                break
    if first is None:
        return None
    row, name, value = first
    return name, unit.first_line + row, value
