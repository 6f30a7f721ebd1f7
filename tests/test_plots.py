"""Tests for course.tools.plots: every chart is titled and labelled, and no pyplot state is left behind."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from course.tools.plots import bar_plot, line_plot

LATENCY = pd.DataFrame(
    {
        "rows": [1_000, 10_000, 100_000, 1_000, 10_000, 100_000],
        "ms": [0.1, 0.1, 0.2, 0.5, 5.0, 50.0],
        "method": ["index", "index", "index", "scan", "scan", "scan"],
    }
)
LABELS = {"title": "Lookup latency", "xlabel": "table size (rows)", "ylabel": "latency (ms)"}


def test_line_plot_is_titled_and_labelled() -> None:
    figure = line_plot(LATENCY, x="rows", y="ms", hue="method", logx=True, logy=True, **LABELS)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    assert axes.get_title() == "Lookup latency"
    assert axes.get_xlabel() == "table size (rows)"
    assert axes.get_ylabel() == "latency (ms)"
    assert (axes.get_xscale(), axes.get_yscale()) == ("log", "log")
    assert [line.get_label() for line in axes.get_lines()] == ["index", "scan"]
    assert list(axes.get_lines()[1].get_ydata()) == [0.5, 5.0, 50.0]
    assert axes.get_legend().get_title().get_text() == "method"


def test_line_plot_accepts_a_dict_and_sorts_by_x() -> None:
    figure = line_plot({"depth": [3, 1, 2], "ms": [30, 10, 20]}, x="depth", y="ms", **LABELS)
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == [10, 20, 30]
    assert figure.axes[0].get_legend() is None
    assert figure.axes[0].get_xscale() == "linear"


def test_bar_plot_labels_each_bar_with_its_value() -> None:
    frame = pd.DataFrame({"case": ["N+1", "selectinload"], "ms": [120.0, 4.5]})
    figure = bar_plot(frame, x="case", y="ms", title="Loading 100 users", xlabel="strategy", ylabel="time (ms)")
    (axes,) = figure.axes
    assert axes.get_title() == "Loading 100 users"
    assert [p.get_height() for p in axes.patches] == [120.0, 4.5]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["N+1", "selectinload"]
    assert [t.get_text() for t in axes.texts] == ["120", "4.5"]


def test_bar_plot_groups_by_hue() -> None:
    figure = bar_plot(LATENCY, x="rows", y="ms", hue="method", logy=True, **LABELS)
    (axes,) = figure.axes
    assert len(axes.patches) == 6
    assert axes.get_yscale() == "log"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["index", "scan"]


def test_title_and_labels_are_required_keywords() -> None:
    with pytest.raises(TypeError, match="title"):
        line_plot(LATENCY, x="rows", y="ms", xlabel="size (rows)", ylabel="latency (ms)")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ylabel"):
        bar_plot(LATENCY, x="rows", y="ms", title="t", xlabel="size (rows)")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        line_plot(LATENCY, "rows", "ms", **LABELS)  # type: ignore[misc]


def test_empty_labels_and_unknown_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="ylabel must not be empty"):
        line_plot(LATENCY, x="rows", y="ms", title="t", xlabel="size (rows)", ylabel=" ")
    with pytest.raises(KeyError, match="no column 'latency'"):
        line_plot(LATENCY, x="rows", y="latency", **LABELS)


def test_no_pyplot_figures_are_left_open_and_figures_render_as_png() -> None:
    before = plt.get_fignums()
    figure = line_plot(LATENCY, x="rows", y="ms", hue="method", **LABELS)
    bar_plot(LATENCY, x="rows", y="ms", hue="method", **LABELS)
    assert plt.get_fignums() == before
    assert figure._repr_png_().startswith(b"\x89PNG")
