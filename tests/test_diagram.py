"""Tests for course.tools.diagram: the ER diagram shows every table, column and foreign key, and no arrow hides."""

from __future__ import annotations

import pytest
from matplotlib.patches import FancyArrowPatch
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

from course.domain.models import DOMAIN_TABLES, Base
from course.tools.diagram import Box, Link, arrow_routes, column_rows, er_diagram, layout, links, select_tables


def _domain_links() -> list[Link]:
    return links(select_tables())


def test_every_foreign_key_of_the_schema_is_a_link() -> None:
    found = _domain_links()
    expected = sum(len(t.foreign_keys) for t in DOMAIN_TABLES)
    assert len(found) == expected == 12
    assert Link("comments", "author_id", "users", "id") in found
    assert Link("post_tags", "tag_id", "tags", "id") in found
    assert {link.column for link in found if link.table == "transfers"} == {"from_account_id", "to_account_id"}


def test_bookkeeping_table_is_hidden_and_subsets_keep_only_their_links() -> None:
    assert {t.name for t in select_tables()} == {t.name for t in DOMAIN_TABLES}
    subset = select_tables(tables=["users", "posts", "tags"])
    assert [t.name for t in subset][0] in {"users", "tags"}
    # post_tags is not drawn, so its links to posts and tags are left out.
    assert links(subset) == [Link("posts", "author_id", "users", "id")]
    with pytest.raises(KeyError, match="no table 'nope'"):
        select_tables(tables=["users", "nope"])


def test_rows_show_keys_types_and_nullability() -> None:
    rows = {t.name: column_rows(t) for t in DOMAIN_TABLES}
    email = next(r for r in rows["users"] if " email " in r)
    assert email.startswith("UQ") and email.endswith("varchar(254)")
    deleted = next(r for r in rows["posts"] if "deleted_at" in r)
    assert deleted.endswith("timestamptz null")
    assert all(r.startswith("PK FK") for r in rows["post_tags"])
    assert next(r for r in rows["profiles"] if "user_id" in r).startswith("FK UQ")
    assert next(r for r in rows["users"] if "external_id" in r).endswith("uuid")
    assert len(rows["users"]) == len(Base.metadata.tables["users"].columns)


def test_parents_sit_left_of_their_children_and_boxes_do_not_overlap() -> None:
    boxes = layout()
    for link in _domain_links():
        assert boxes[link.target_table].level < boxes[link.table].level
        assert boxes[link.target_table].x + boxes[link.target_table].width < boxes[link.table].x
    placed = sorted(boxes.values(), key=lambda b: (b.level, b.y))
    for above, below in zip(placed, placed[1:], strict=False):
        if above.level == below.level:
            assert above.y + above.height < below.y


def _inside(box: Box, x: float, y: float, inset: float = 0.02) -> bool:
    return box.x + inset < x < box.x + box.width - inset and box.y + inset < y < box.y + box.height - inset


def test_no_arrow_runs_behind_a_table() -> None:
    tables = select_tables()
    boxes = layout()
    routes = arrow_routes(boxes, tables)
    assert set(routes) == set(_domain_links())
    for link, points in routes.items():
        target = boxes[link.target_table]
        # The arrow ends on the right edge of the referred table, at the row of the referred column.
        assert points[-1] == pytest.approx((target.x + target.width, target.row_y(0)))
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            for step in range(1, 50):
                x, y = x0 + (x1 - x0) * step / 50, y0 + (y1 - y0) * step / 50
                hidden = [b.table for b in boxes.values() if _inside(b, x, y)]
                assert not hidden, f"{link} passes behind {hidden}"


def test_diagram_draws_every_table_column_and_arrow() -> None:
    figure = er_diagram()
    axes = figure.axes[0]
    texts = [t.get_text() for t in axes.texts]
    for table in DOMAIN_TABLES:
        assert table.name in texts
        assert all(row in texts for row in column_rows(table))
    arrows = [p for p in axes.patches if isinstance(p, FancyArrowPatch)]
    assert sorted(a.get_gid() for a in arrows) == sorted(f"{k.table}.{k.column}" for k in _domain_links())
    png = figure._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_any_metadata_works_including_a_self_reference() -> None:
    meta = MetaData()
    Table("teams", meta, Column("id", Integer, primary_key=True), Column("name", String(40), unique=True))
    Table(
        "people",
        meta,
        Column("id", Integer, primary_key=True),
        Column("team_id", ForeignKey("teams.id")),
        Column("manager_id", ForeignKey("people.id"), nullable=True),
    )
    Table("notes", meta, Column("id", Integer, primary_key=True))
    boxes = layout(meta)
    assert (boxes["teams"].level, boxes["people"].level, boxes["notes"].level) == (0, 1, 0)
    routes = arrow_routes(boxes, select_tables(meta))
    loop = routes[Link("people", "manager_id", "people", "id")]
    # The self-reference leaves and re-enters its own box on the right.
    assert all(x >= boxes["people"].x + boxes["people"].width for x, _ in loop)
    figure = er_diagram(meta, title="A small schema")
    assert "A small schema" in [t.get_text() for t in figure.axes[0].texts]


def test_an_empty_selection_is_refused() -> None:
    assert layout(MetaData()) == {}
    with pytest.raises(ValueError, match="no tables"):
        er_diagram(MetaData())
