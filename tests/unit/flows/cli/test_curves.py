"""Training-curve plots a user sees from `retrain runs show`: the PNG and the terminal chart."""

from __future__ import annotations

import math

import pytest

from flows.cli.curves import AXIS_WIDTH, curve_figure, text_curves, write_curve_png
from retrain.store.orm import TrainingMetricsHistory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _history(n: int = 5) -> list[tuple[int, dict[str, float]]]:
    return [
        (e, {"loss": 1.2 / e, "val_loss": 1.3 / e + 0.05, "val_recall_at_100": 0.2 + 0.1 * e})
        for e in range(1, n + 1)
    ]


def _chart(text: str, title: str) -> dict[str, list[str]]:
    """Split one chart of ``text_curves`` output into grid rows, x axis, ticks and legend."""
    lines = text.split("\n")
    start = lines.index(f"{title} by epoch") + 1
    corner = " " * (AXIS_WIDTH - 1) + "+"
    axis = next(i for i in range(start, len(lines)) if lines[i].startswith(corner))
    end = next((i for i in range(axis, len(lines)) if not lines[i]), len(lines))
    return {
        "grid": [line[AXIS_WIDTH:] for line in lines[start:axis]],
        "labels": [line[: AXIS_WIDTH - 2].strip() for line in lines[start:axis]],
        "ticks": lines[axis + 1].split(),
        "legend": lines[axis + 2:end],
    }


def _cells(grid: list[str], marker: str) -> list[tuple[int, int]]:
    return [(r, c) for r, row in enumerate(grid) for c, ch in enumerate(row) if ch == marker]


# --- PNG -----------------------------------------------------------------------------------


def test_png_is_a_readable_image_of_sensible_size(tmp_path):
    from matplotlib.image import imread

    path = write_curve_png(_history(), tmp_path / "runs" / "r1" / "curves.png", title="run r1")

    assert path == tmp_path / "runs" / "r1" / "curves.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert 300 <= height <= 2000 and 600 <= width <= 3000
    assert pixels.std() > 0, "the image is a blank canvas"


def test_png_replaces_an_existing_file_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "curves.png"
    target.write_bytes(b"stale")

    write_curve_png(_history(), target, title="again")

    assert target.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_figure_has_a_loss_panel_and_a_metrics_panel_with_legends():
    figure = curve_figure(_history(), title="run r1")

    losses, metrics = figure.axes
    assert figure.get_suptitle() == "run r1"
    assert [t.get_text() for t in losses.get_legend().get_texts()] == ["loss", "val_loss"]
    assert [t.get_text() for t in metrics.get_legend().get_texts()] == ["val_recall_at_100"]
    train, val = losses.lines
    assert (train.get_linestyle(), val.get_linestyle()) == ("-", "--")
    assert all(tick == int(tick) for tick in losses.get_xticks())


def test_png_from_orm_rows_with_one_epoch_and_nan(tmp_path):
    rows = [TrainingMetricsHistory(run_id="r", epoch=1, metrics={"loss": 0.7, "val_loss": None})]

    path = write_curve_png(rows, tmp_path / "one.png", title="one epoch")

    assert path.read_bytes()[:8] == PNG_MAGIC
    loss_panel = curve_figure(rows, title="x").axes[0]
    assert [line.get_label() for line in loss_panel.lines] == ["loss"]


def test_empty_history_names_the_problem_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="no epochs recorded"):
        write_curve_png([], tmp_path / "out" / "curves.png", title="empty")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="no epochs recorded"):
        text_curves([])


# --- terminal plot -------------------------------------------------------------------------


def test_text_legend_names_every_metric_with_its_min_and_max():
    text = text_curves(_history())

    legend = _chart(text, "losses")["legend"] + _chart(text, "metrics")["legend"]
    expected = {"loss": (0.24, 1.2), "val_loss": (0.31, 1.35), "val_recall_at_100": (0.3, 0.7)}
    for name, (low, high) in expected.items():
        line = next(line for line in legend if f" {name} " in line)
        assert f"min {low:.4g}" in line and f"max {high:.4g}" in line


def test_text_losses_come_before_other_metrics_and_y_labels_show_the_range():
    text = text_curves(_history())

    assert text.index("losses by epoch") < text.index("metrics by epoch")
    labels = _chart(text, "losses")["labels"]
    assert (labels[0], labels[-1]) == ("1.35", "0.24")


def test_text_x_axis_shows_the_epoch_numbers():
    assert _chart(text_curves(_history()), "losses")["ticks"] == ["1", "2", "3", "4", "5"]


def test_text_crowded_x_axis_keeps_labels_apart_and_ends_on_the_last_epoch():
    history = [(e, {"loss": 1.0 / e}) for e in range(95, 120)]

    ticks = _chart(text_curves(history, width=30), "losses")["ticks"]

    assert ticks[0] == "95" and ticks[-1] == "119"
    assert [int(t) for t in ticks] == sorted({int(t) for t in ticks}), "labels ran together"
    assert len(ticks) >= 4


def test_text_higher_value_is_drawn_on_a_higher_row():
    grid = _chart(text_curves(_history()), "metrics")["grid"]

    points = sorted(_cells(grid, "*"), key=lambda rc: rc[1])  # left to right = epoch 1..5
    rows = [r for r, _ in points]
    assert len(points) == 5
    assert rows == sorted(rows, reverse=True) and rows[0] > rows[-1], "recall rises, row drops"
    assert rows[-1] == 0 and rows[0] == len(grid) - 1


def test_text_one_epoch_is_readable():
    text = text_curves([(3, {"loss": 0.42})])

    chart = _chart(text, "losses")
    assert chart["ticks"] == ["3"]
    assert len(_cells(chart["grid"], "*")) == 1
    assert "0.42" in chart["labels"]


def test_text_skips_nan_and_missing_values():
    # val_loss sits well above loss so that no marker hides another.
    history = [(e, {"loss": 0.1 * e, "val_loss": 1.0 + 0.1 * e}) for e in range(1, 7)]
    history[2][1]["val_loss"] = math.nan
    del history[3][1]["val_loss"]
    history[5][1]["val_loss"] = None

    text = text_curves(history, width=51)

    chart = _chart(text, "losses")
    assert sorted(c for _, c in _cells(chart["grid"], "o")) == [0, 10, 40]  # epochs 1, 2, 5
    assert len(_cells(chart["grid"], "*")) == 6
    assert chart["ticks"] == ["1", "2", "3", "4", "5", "6"]
    assert "nan" not in text.lower()


def test_text_constant_series_sits_on_one_labelled_row():
    chart = _chart(text_curves([(e, {"val_recall_at_5": 0.5}) for e in range(1, 5)]), "metrics")

    rows = {r for r, _ in _cells(chart["grid"], "*")}
    assert len(rows) == 1
    assert chart["labels"][rows.pop()] == "0.5"
    assert "losses by epoch" not in text_curves([(1, {"val_recall_at_5": 0.5})])


def test_text_metric_with_no_values_is_listed_as_such():
    text = text_curves([(1, {"loss": 0.3, "val_loss": math.nan})])

    assert any("val_loss" in line and "(no values)" in line for line in text.split("\n"))


@pytest.mark.parametrize(("width", "height"), [(8, 2), (20, 4), (60, 10), (120, 20)])
def test_text_lines_stay_within_width_plus_axis(width, height):
    long_name = "val_" + "sampled_softmax_recall_at_100_" * 3
    history = [(e, {"loss": 1.0 / e, long_name: -1.2345e-7 * e}) for e in range(95, 120)]

    text = text_curves(history, width=width, height=height)

    assert max(len(line) for line in text.split("\n")) <= width + AXIS_WIDTH
    assert len(_chart(text, "losses")["grid"]) == height


def test_text_is_deterministic_whatever_the_key_order():
    forward = [(e, dict(m)) for e, m in _history()]
    backward = [(e, dict(reversed(list(m.items())))) for e, m in reversed(_history())]

    assert text_curves(forward) == text_curves(backward)


def test_text_rejects_a_grid_too_small_to_draw():
    with pytest.raises(ValueError, match="width >= 8"):
        text_curves(_history(), width=4)
