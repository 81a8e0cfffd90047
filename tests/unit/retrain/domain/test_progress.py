"""Progress inside a stage: what a core reports reaches the installed sink, readably."""

from __future__ import annotations

from retrain.domain.progress import Progress, ProgressUnit, report, reporter, reporting_to


def test_reports_reach_the_sink_only_inside_the_block():
    seen: list[Progress] = []
    report(1, 2, ProgressUnit.BYTES, "read")  # nobody listens: nothing happens
    with reporting_to(seen.append):
        reporter(ProgressUnit.BYTES, "read")(3 << 29, 4 << 29)
    report(2, 2, ProgressUnit.BYTES, "read")
    assert [p.describe() for p in seen] == ["1.5 of 2.0 GB read (75%)"]


def test_descriptions_scale_units_and_cap_the_fraction():
    assert Progress(300_000, 900_000, ProgressUnit.ROWS, "sampled").describe() == (
        "300,000 of 900,000 rows sampled (33%)")
    assert Progress(5 << 20, 10 << 20, ProgressUnit.BYTES, "read").describe() == (
        "5.0 of 10.0 MB read (50%)")
    assert Progress(7, 0, ProgressUnit.BYTES, "read").fraction == 1.0
