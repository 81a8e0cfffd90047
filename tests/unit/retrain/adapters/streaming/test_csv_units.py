"""CSV units: header hygiene (BOM, CRLF), quote-aware cuts, errors naming file, line, column."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.adapters.streaming import csv_units
from retrain.adapters.streaming.csv_units import DataFormatError, FeatureKind


def _rows(path: Path, unit_bytes: int) -> list[dict]:
    rows = []
    for unit in csv_units.plan_units(str(path), unit_bytes):
        for batch in csv_units.batches(unit):
            rows.extend(batch.to_pylist())
    return rows


def test_bom_and_crlf_give_clean_column_names_and_values(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfbuyer_id,quantity,rating\r\nB1,3,4.5\r\nB2,,1\r\n")
    units = csv_units.plan_units(str(path), 1 << 20)
    assert units[0].layout.columns == ("buyer_id", "quantity", "rating")
    assert units[0].layout.kinds == (FeatureKind.BYTES, FeatureKind.INT, FeatureKind.FLOAT)
    assert _rows(path, 1 << 20) == [
        {"buyer_id": b"B1", "quantity": 3, "rating": 4.5},
        {"buyer_id": b"B2", "quantity": None, "rating": 1.0},  # an empty cell is missing
    ]


def test_units_cut_only_at_row_ends_even_inside_quoted_newlines(tmp_path):
    lines = [b"id,note,n"]
    expected = []
    for i in range(400):
        note = f'line one\nline "{i}" two' if i % 3 == 0 else f"plain {i}"
        quoted = '"' + note.replace('"', '""') + '"' if i % 3 == 0 else note
        lines.append(f"{i},{quoted},{i * 2}".encode())
        expected.append({"id": i, "note": note.encode(), "n": i * 2})
    path = tmp_path / "quoted.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    units = csv_units.plan_units(str(path), 97)  # many tiny units, cuts land mid-field
    assert len(units) > 50 and all(unit.layout.quoted for unit in units)
    assert [u.start for u in units[1:]] == [u.end for u in units[:-1]]
    assert _rows(path, 97) == expected


def test_each_unit_knows_the_line_its_rows_start_on(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(1000)))
    units = csv_units.plan_units(str(path), 500)
    for unit in units:
        first = next(iter(csv_units.batches(unit))).column("a")[0].as_py()
        assert unit.first_line == first + 2  # header is line 1, value 0 is on line 2


def test_a_row_with_too_many_fields_names_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    rows = [f"B{i},{i},1.5" for i in range(3000)]
    rows[2345] = "B2345,7,1.5,extra"
    path.write_text("buyer_id,quantity,rating\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError) as caught:
        _rows(path, 4096)
    message = str(caught.value)
    assert f"{path} line 2347: 4 field(s) where the header has 3" in message
    assert "B2345,7,1.5,extra" in message


def test_a_value_that_does_not_fit_its_column_names_column_and_line(tmp_path):
    path = tmp_path / "bad_value.csv"
    rows = [f"B{i},{i},4.5" for i in range(400_000)]  # kinds come from the first 4 MB
    rows[380_000] = "B380000,7,four"
    path.write_text("buyer_id,quantity,rating\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataFormatError) as caught:
        _rows(path, 1 << 20)
    assert str(caught.value).startswith(
        f"{path} line 380002, column 'rating': 'four' is not a number"
    )


@pytest.mark.parametrize(
    ("header", "problem"),
    [(b"a,,c\n1,2,3\n", "header column(s) [2] have no name"),
     (b"a,b,a\n1,2,3\n", "header repeats column name(s) ['a']"),
     (b"\n1,2\n", "the first line holds no column names")],
)
def test_bad_headers_are_refused_by_name(tmp_path, header, problem):
    path = tmp_path / "h.csv"
    path.write_bytes(header)
    with pytest.raises(DataFormatError) as caught:
        csv_units.plan_units(str(path), 1 << 20)
    assert str(caught.value) == f"{path}: {problem}"


def test_files_of_one_input_share_a_header_and_unified_kinds(tmp_path):
    (tmp_path / "a.csv").write_text("id,n,x\n1,2,\n2,3,\n")
    (tmp_path / "b.csv").write_text("id,n,x\n3,4.5,z\n")
    units = csv_units.plan_files([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], 1 << 20)
    assert {unit.layout.kinds for unit in units} == {
        (FeatureKind.INT, FeatureKind.FLOAT, FeatureKind.BYTES)}
    (tmp_path / "c.csv").write_text("id,m,x\n1,2,3\n")
    with pytest.raises(DataFormatError, match="differs from"):
        csv_units.plan_files([str(tmp_path / "a.csv"), str(tmp_path / "c.csv")], 1 << 20)
