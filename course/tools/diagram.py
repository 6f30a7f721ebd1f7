"""An entity-relationship diagram drawn from the models' metadata with matplotlib, so it never drifts from the schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from matplotlib.patches import FancyArrowPatch, Rectangle
from matplotlib.path import Path
from sqlalchemy import DateTime, Integer, MetaData, String, Table, Text, TypeDecorator, Uuid
from sqlalchemy.types import TypeEngine

from course.tools.plots import LessonFigure

# Tables that hold the course's bookkeeping, not the domain a lesson talks about.
HIDDEN_TABLES = frozenset({"course_meta"})

# Sizes in inches: the axes are laid out one data unit per inch, so text and boxes scale together.
ROW = 0.21
CHAR = 0.068  # width of one character of the monospaced font at FONT_SIZE
FONT_SIZE = 8
PAD = 0.12
COLUMN_GAP = 1.1
BOX_GAP = 0.35
MARGIN = 0.3
TITLE_SPACE = 0.45
# One colour per referenced table keeps the lines into a busy table (users) apart.
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass(frozen=True)
class Link:
    """One foreign key: table.column refers to target_table.target_column."""

    table: str
    column: str
    target_table: str
    target_column: str


@dataclass(frozen=True)
class Box:
    """Where a table is drawn (inches, y growing downwards) and the text of its rows."""

    table: str
    level: int
    x: float
    y: float
    width: float
    rows: tuple[str, ...]

    @property
    def height(self) -> float:
        return ROW * (len(self.rows) + 1)

    def row_y(self, column_index: int) -> float:
        """Vertical centre of a column's row (the header is row 0)."""
        return self.y + ROW * (column_index + 1.5)


def _metadata(metadata: MetaData | None) -> MetaData:
    if metadata is not None:
        return metadata
    from course.domain.models import Base

    return Base.metadata


def select_tables(metadata: MetaData | None = None, tables: Iterable[str] | None = None) -> list[Table]:
    """The tables to draw, parents before children; unknown names raise a KeyError that lists the known ones."""
    meta = _metadata(metadata)
    if tables is None:
        return [t for t in meta.sorted_tables if t.name not in HIDDEN_TABLES]
    wanted = list(tables)
    unknown = [name for name in wanted if name not in meta.tables]
    if unknown:
        raise KeyError(f"no table {', '.join(map(repr, unknown))} (tables: {', '.join(sorted(meta.tables))})")
    return [t for t in meta.sorted_tables if t.name in wanted]


def links(tables: Sequence[Table]) -> list[Link]:
    """Every foreign key between the given tables, in a stable order."""
    names = {t.name for t in tables}
    found = [
        Link(t.name, fk.parent.name, fk.column.table.name, fk.column.name)
        for t in tables
        for fk in t.foreign_keys
        if fk.column.table.name in names
    ]
    return sorted(found, key=lambda link: (link.table, link.column))


def _type_label(sql_type: TypeEngine[object]) -> str:
    impl = sql_type.impl_instance if isinstance(sql_type, TypeDecorator) else sql_type
    if isinstance(impl, DateTime):
        return "timestamptz" if impl.timezone else "timestamp"
    if isinstance(impl, Text):
        return "text"
    if isinstance(impl, String):
        return f"varchar({impl.length})" if impl.length else "varchar"
    if isinstance(impl, Uuid):
        return "uuid"
    if isinstance(impl, Integer):
        return "int"
    return type(impl).__name__.lower()


def _unique_columns(table: Table) -> set[str]:
    single = {c.name for c in table.columns if c.unique}
    for constraint in table.constraints:
        columns = getattr(constraint, "columns", ())
        if type(constraint).__name__ == "UniqueConstraint" and len(columns) == 1:
            single |= {c.name for c in columns}
    single |= {next(iter(ix.columns)).name for ix in table.indexes if ix.unique and len(ix.columns) == 1}
    return single


def column_rows(table: Table) -> tuple[str, ...]:
    """One line per column: key flags (PK, FK, UQ), name, type, and `null` where NULL is allowed."""
    unique = _unique_columns(table)
    width = max(len(c.name) for c in table.columns)
    rows = []
    for column in table.columns:
        flags = [
            flag
            for flag, present in (
                ("PK", column.primary_key),
                ("FK", bool(column.foreign_keys)),
                ("UQ", column.name in unique and not column.primary_key),
            )
            if present
        ]
        null = " null" if column.nullable and not column.primary_key else ""
        rows.append(f"{' '.join(flags):<5} {column.name:<{width}}  {_type_label(column.type)}{null}".rstrip())
    return tuple(rows)


def _levels(tables: Sequence[Table]) -> dict[str, int]:
    """Tables that refer to nothing sit at level 0; every other table one level right of its deepest parent."""
    parents = {t.name: {link.target_table for link in links(tables) if link.table == t.name} for t in tables}
    levels: dict[str, int] = {}
    # sorted_tables order puts parents first, so one pass suffices (self-references are ignored).
    for t in tables:
        above = [levels[p] for p in parents[t.name] if p != t.name and p in levels]
        levels[t.name] = 1 + max(above) if above else 0
    return levels


def _barycentre(name: str, neighbours: dict[str, list[str]], rank: dict[str, float]) -> float:
    """The mean position of the tables linked to name (its own position when it links to none)."""
    near = neighbours[name]
    return sum(rank[n] for n in near) / len(near) if near else rank[name]


def _order_columns(tables: Sequence[Table], levels: dict[str, int]) -> list[list[str]]:
    """Tables per level, ordered so each sits near the tables it links to (a few barycentre sweeps)."""
    columns: list[list[str]] = [[] for _ in range(max(levels.values(), default=-1) + 1)]
    for t in tables:
        columns[levels[t.name]].append(t.name)
    neighbours: dict[str, list[str]] = {t.name: [] for t in tables}
    for link in links(tables):
        if link.table != link.target_table:
            neighbours[link.table].append(link.target_table)
            neighbours[link.target_table].append(link.table)
    for _ in range(4):
        rank = {name: i / max(len(col), 1) for col in columns for i, name in enumerate(col)}
        for col in columns:
            col.sort(key=partial(_barycentre, neighbours=neighbours, rank=rank))
    return columns


def layout(metadata: MetaData | None = None, *, tables: Iterable[str] | None = None) -> dict[str, Box]:
    """Place each table's box: one column per level, parents to the left, columns centred vertically."""
    selected = select_tables(metadata, tables)
    if not selected:
        return {}
    rows = {t.name: column_rows(t) for t in selected}
    width = PAD * 2 + CHAR * max(len(line) for lines in rows.values() for line in (*lines, "")) + CHAR * 2
    width = max(width, PAD * 2 + CHAR * (max(len(name) for name in rows) + 2))
    columns = _order_columns(selected, _levels(selected))
    heights = [sum(ROW * (len(rows[n]) + 1) for n in col) + BOX_GAP * (len(col) - 1) for col in columns]
    tallest = max(heights)
    boxes: dict[str, Box] = {}
    for level, (col, height) in enumerate(zip(columns, heights, strict=True)):
        x = MARGIN + level * (width + COLUMN_GAP)
        y = MARGIN + TITLE_SPACE + (tallest - height) / 2
        for name in col:
            boxes[name] = Box(name, level, x, y, width, rows[name])
            y += ROW * (len(rows[name]) + 1) + BOX_GAP
    return boxes


def _distance(a: float, b: float) -> float:
    return abs(b - a)


def _gaps(column: list[Box]) -> list[float]:
    """The y of every free lane in a column of boxes: above the first, between two, below the last."""
    ordered = sorted(column, key=lambda b: b.y)
    lanes = [ordered[0].y - BOX_GAP / 2]
    lanes += [(a.y + a.height + b.y) / 2 for a, b in zip(ordered, ordered[1:], strict=False)]
    return [*lanes, ordered[-1].y + ordered[-1].height + BOX_GAP / 2]


Point = tuple[float, float]


def arrow_routes(boxes: dict[str, Box], tables: Sequence[Table]) -> dict[Link, list[Point]]:
    """The polyline of each foreign-key arrow, from the referring row to the referred row, around other boxes.

    Neighbouring levels are joined by a straight line across the gap between them; a link that skips a level
    crosses it through the free lane nearest to the straight line, so no arrow hides behind a table.
    """
    by_level: dict[int, list[Box]] = {}
    for box in boxes.values():
        by_level.setdefault(box.level, []).append(box)
    columns_of = {t.name: [c.name for c in t.columns] for t in tables}
    routes: dict[Link, list[Point]] = {}
    for link in links(tables):
        source, target = boxes[link.table], boxes[link.target_table]
        start_y = source.row_y(columns_of[link.table].index(link.column))
        end_y = target.row_y(columns_of[link.target_table].index(link.target_column))
        if source.table == target.table:
            # A self-reference loops out to the right of its own box and back.
            right = source.x + source.width
            routes[link] = [(right, start_y), (right + 0.3, start_y), (right + 0.3, end_y), (right, end_y)]
            continue
        start, end = (source.x, start_y), (target.x + target.width, end_y)
        points = [start]
        for level in range(source.level - 1, target.level, -1):
            lane_box = by_level[level][0]
            left, right = lane_box.x - COLUMN_GAP / 2, lane_box.x + lane_box.width + COLUMN_GAP / 2
            share = (start[0] - (left + right) / 2) / (start[0] - end[0])
            straight = start[1] + (end[1] - start[1]) * share
            lane = min(_gaps(by_level[level]), key=partial(_distance, straight))
            points += [(right, lane), (left, lane)]
        routes[link] = [*points, end]
    return routes


def er_diagram(
    metadata: MetaData | None = None,
    *,
    tables: Iterable[str] | None = None,
    title: str = "The course schema: tables, columns and foreign keys",
) -> LessonFigure:
    """Draw the tables (all domain tables by default) as boxes, with an arrow from each foreign key to its target."""
    selected = select_tables(metadata, tables)
    boxes = layout(metadata, tables=[t.name for t in selected])
    if not boxes:
        raise ValueError("no tables to draw")
    fig_width = max(b.x + b.width for b in boxes.values()) + MARGIN
    fig_height = max(b.y + b.height for b in boxes.values()) + MARGIN
    figure = LessonFigure(figsize=(fig_width, fig_height))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, fig_width)
    axes.set_ylim(fig_height, 0)
    axes.axis("off")
    axes.text(MARGIN, MARGIN, title, fontsize=FONT_SIZE + 4, weight="bold", va="top")
    legend = "PK primary key · FK foreign key (arrow → the row it refers to) · UQ unique · null: may be NULL"
    axes.text(MARGIN, MARGIN + 0.27, legend, fontsize=FONT_SIZE, color="0.35", va="top")

    for box in boxes.values():
        axes.add_patch(
            Rectangle((box.x, box.y), box.width, box.height, facecolor="white", edgecolor="0.2", zorder=2)
        )
        axes.add_patch(Rectangle((box.x, box.y), box.width, ROW, facecolor="#dbe7f3", edgecolor="0.2", zorder=2))
        axes.text(
            box.x + PAD, box.y + ROW / 2, box.table, weight="bold", fontsize=FONT_SIZE + 1, va="center", zorder=3
        )
        for i, row in enumerate(box.rows):
            axes.text(
                box.x + PAD, box.row_y(i), row, family="monospace", fontsize=FONT_SIZE, va="center", zorder=3
            )

    routes = arrow_routes(boxes, selected)
    targets = sorted({link.target_table for link in routes})
    for link, points in routes.items():
        codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
        axes.add_patch(
            FancyArrowPatch(
                path=Path(points, codes),
                arrowstyle="-|>",
                mutation_scale=10,
                color=COLOURS[targets.index(link.target_table) % len(COLOURS)],
                linewidth=1.1,
                zorder=1,
                gid=f"{link.table}.{link.column}",
            )
        )
    return figure
