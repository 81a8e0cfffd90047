"""A stage's progress goes to its log at most every few seconds, and always at the end."""

from __future__ import annotations

import logging

from retrain.domain.progress import Progress, ProgressUnit
from retrain.domain.stages import Stage
from tasks.shared import progress


def test_the_sink_logs_throttled_and_always_the_last_report(caplog, monkeypatch):
    stamps = iter([100.0, 101.0, 106.0, 107.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(stamps))
    logger = logging.getLogger("stage-test")
    sink = progress.stage_sink(Stage.EXAMPLE_GEN, None, logger)
    with caplog.at_level(logging.INFO, logger="stage-test"):
        for done in (1, 2, 3, 4):
            sink(Progress(done << 20, 4 << 20, ProgressUnit.BYTES, "read"))
    assert [r.getMessage() for r in caplog.records] == [
        "ExampleGen: 1.0 of 4.0 MB read (25%)",   # first
        "ExampleGen: 3.0 of 4.0 MB read (75%)",   # 6 s later
        "ExampleGen: 4.0 of 4.0 MB read (100%)",  # the end, whenever it comes
    ]
