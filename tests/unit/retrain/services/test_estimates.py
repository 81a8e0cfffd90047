"""Row counts behind a first run's cost estimate: exact for small CSVs, extrapolated for big."""

from __future__ import annotations

import pytest

from retrain.services.estimates import CSV_FULL_COUNT_BYTES, csv_rows


def test_small_csv_rows_are_counted_exactly(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(1234)))
    assert csv_rows(str(path)) == 1234


def test_big_csv_rows_are_extrapolated_from_the_first_mebibyte(tmp_path):
    path = tmp_path / "big.csv"
    line = b"buyer-000001,product-000001,2027-01-01T00:00:00,3\n"  # 50 bytes
    rows = CSV_FULL_COUNT_BYTES // len(line) + 100_000
    with open(path, "wb") as handle:
        handle.write(b"buyer_id,product_id,timestamp,rating\n")
        handle.write(line * rows)
    assert path.stat().st_size > CSV_FULL_COUNT_BYTES
    assert csv_rows(str(path)) == pytest.approx(rows, rel=0.01)
