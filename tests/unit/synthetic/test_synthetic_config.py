"""SyntheticConfig validation: bad values are rejected with the offending field named."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from synthetic import SyntheticConfig


def test_defaults_are_valid_and_sized_for_ten_thousand_rows() -> None:
    config = SyntheticConfig()
    assert config.rows == 10_000
    assert (config.buyers, config.products, config.categories, config.cities) == (500, 200, 12, 8)
    assert config.num_files == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rows", 999),
        ("rows", 100_000_001),
        ("products", 0),
        ("buyers", 0),
        ("latent_dim", 0),
        ("seed", -1),
        ("days", 0),
        ("temperature", 0.0),
        ("format", "json"),
        ("rows_per_file", 10),
    ],
)
def test_out_of_range_field_is_named_in_the_error(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        SyntheticConfig(**{field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="n_rows"):
        SyntheticConfig(n_rows=5)


def test_more_categories_than_products_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"categories \(30\) must be <= products \(20\)"):
        SyntheticConfig(products=20, categories=30)


def test_more_cities_than_buyers_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"cities \(9\) must be <= buyers \(5\)"):
        SyntheticConfig(buyers=5, cities=9)


def test_too_many_shards_is_rejected() -> None:
    with pytest.raises(ValidationError, match="rows_per_file"):
        SyntheticConfig(rows=10_000_000, rows_per_file=100)


def test_window_is_utc_days_from_start_date() -> None:
    config = SyntheticConfig(start_date=dt.date(2024, 3, 1), days=2)
    assert config.start_timestamp == 1_709_251_200  # 2024-03-01T00:00:00Z
    assert config.end_timestamp - config.start_timestamp == 2 * 86_400
