"""Lesson plots: line and bar charts that always carry a title and labelled axes with units."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


class LessonFigure(Figure):
    """A Figure that renders itself in Jupyter without pyplot, so no global figure state piles up."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def _frame(data: pd.DataFrame | Mapping[str, Sequence[Any]], columns: Sequence[str | None]) -> pd.DataFrame:
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
    missing = [c for c in columns if c is not None and c not in frame.columns]
    if missing:
        raise KeyError(f"no column {', '.join(map(repr, missing))} in the data (columns: {list(frame.columns)})")
    return frame


def _new_axes(*, title: str, xlabel: str, ylabel: str) -> tuple[LessonFigure, Axes]:
    for name, value in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)):
        if not str(value).strip():
            raise ValueError(f"{name} must not be empty: say what is measured, with units, e.g. 'time (ms)'")
    figure = LessonFigure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def line_plot(
    data: pd.DataFrame | Mapping[str, Sequence[Any]],
    *,
    x: str,
    y: str,
    hue: str | None = None,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
) -> LessonFigure:
    """One line per value of hue (or a single line): how y grows with x, e.g. latency against table size."""
    frame = _frame(data, [x, y, hue])
    figure, axes = _new_axes(title=title, xlabel=xlabel, ylabel=ylabel)
    groups = frame.groupby(hue, sort=False) if hue else [(None, frame)]
    for key, group in groups:
        ordered = group.sort_values(x)
        label = str(key[0] if isinstance(key, tuple) else key) if hue else None
        axes.plot(ordered[x], ordered[y], marker="o", label=label)
    if logx:
        axes.set_xscale("log")
    if logy:
        axes.set_yscale("log")
    if hue:
        axes.legend(title=hue)
    return figure


def bar_plot(
    data: pd.DataFrame | Mapping[str, Sequence[Any]],
    *,
    x: str,
    y: str,
    hue: str | None = None,
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    value_format: str = "{:.3g}",
) -> LessonFigure:
    """Bars for categories (e.g. N+1 against selectinload), grouped by hue, each labelled with its value."""
    frame = _frame(data, [x, y, hue])
    figure, axes = _new_axes(title=title, xlabel=xlabel, ylabel=ylabel)
    if hue:
        table = frame.pivot_table(index=x, columns=hue, values=y, sort=False)
    else:
        table = frame.set_index(x)[[y]]
    positions = range(len(table.index))
    width = 0.8 / len(table.columns)
    for offset, column in enumerate(table.columns):
        shifted = [p - 0.4 + width * (offset + 0.5) for p in positions]
        bars = axes.bar(shifted, table[column], width=width, label=str(column) if hue else None)
        axes.bar_label(
            bars, labels=["" if pd.isna(v) else value_format.format(v) for v in table[column]], fontsize="small"
        )
    axes.set_xticks(list(positions), [str(label) for label in table.index])
    if logy:
        axes.set_yscale("log")
    if hue:
        axes.legend(title=hue)
    return figure
