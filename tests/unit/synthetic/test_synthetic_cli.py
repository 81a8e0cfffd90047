"""python -m synthetic: one-line summary on success, argparse errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic import read_dataset
from synthetic.__main__ import main


def test_cli_generates_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    code = main(
        ["--rows", "1000", "--format", "parquet", "--out", str(out), "--rows-per-file", "400"]
    )
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert printed[0].startswith("wrote 1000 rows to 3 parquet file(s)")
    dataset = read_dataset(out)
    assert dataset.rows == 1000
    assert len(dataset.files) == 3


def test_cli_reports_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--rows", "5", "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "rows" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_without_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--rows", "1000", "--out", str(tmp_path)]) == 0
    with pytest.raises(SystemExit) as caught:
        main(["--rows", "1000", "--out", str(tmp_path), "--seed", "1"])
    assert caught.value.code == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["--rows", "1000", "--out", str(tmp_path), "--seed", "1", "--overwrite"]) == 0


def test_cli_sets_the_zipf_exponent(tmp_path: Path) -> None:
    out = tmp_path / "skewed"
    assert main(["--rows", "1000", "--out", str(out), "--product-popularity-zipf", "1.2"]) == 0
    assert read_dataset(out).config.product_popularity_zipf == 1.2
