"""Tables drawn by a second process come back exactly as drawn in-process, and the process never outlives its use."""

import os
import pickle
from pathlib import Path

import psutil
import pytest

from course import db, seed
from course.db import aio
from course.seed import drawing
from course.seed.generate import build_tables
from course.settings import get_settings


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_pack_keeps_every_value_and_type(backend: str) -> None:
    for table in build_tables("tiny", backend):
        columns = table.data()
        back = drawing.unpack(pickle.loads(pickle.dumps(drawing.pack(columns))))
        assert back == [list(c) for c in columns], table.table
        assert [[type(v) for v in c] for c in back] == [[type(v) for v in c] for c in columns], table.table


def test_pack_falls_back_where_a_shortcut_would_change_a_value() -> None:
    columns = [
        ["a", None, "b\x00c", ""],  # the separator inside a value
        [1, None, 2**70],  # beyond int64
        [True, False],  # bools are not ints here
        [1, 2.5],  # a float among ints
        ["x", 1],  # mixed
        [],
        [None, None],
        ["", None, "z"],
    ]
    packed = drawing.pack(columns)
    assert drawing.unpack(pickle.loads(pickle.dumps(packed))) == columns
    back = drawing.unpack(packed)
    assert [[type(v) for v in c] for c in back] == [[type(v) for v in c] for c in columns]
    assert [p[0] for p in packed] == ["list", "list", "list", "list", "list", "text", "text", "text"]


def _children() -> set[int]:
    return {child.pid for child in psutil.Process(os.getpid()).children(recursive=True)}


def test_the_child_serves_the_same_rows_and_is_gone_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "CHILD_FROM_ROWS", 0)
    before = _children()
    names = ("comments", "posts")
    with drawing.drawing_beside("tiny", "sqlite", names) as beside:
        started = _children() - before
        assert len(started) == 1, "one child, started at once"
        served = beside(build_tables("tiny", "sqlite"))
        for table in reversed(served):  # out of order: waits for the child, then takes what it sent
            assert [list(c) for c in table.data()] == [list(c) for c in _reference(table.table)]
    assert not started & _children()


def test_a_dead_child_means_drawing_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "CHILD_FROM_ROWS", 0)
    monkeypatch.setattr(drawing, "_CHILD", "import sys; sys.exit(3)")
    with drawing.drawing_beside("tiny", "postgres", ["posts"]) as beside:
        (posts,) = [t for t in beside(build_tables("tiny", "postgres")) if t.table == "posts"]
        assert [list(c) for c in posts.data()] == [list(c) for c in _reference("posts", "postgres")]


def test_a_stuck_child_means_drawing_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "CHILD_FROM_ROWS", 0)
    monkeypatch.setattr(drawing, "PATIENCE", 0.5)
    monkeypatch.setattr(drawing, "_CHILD", "import time; time.sleep(60)")
    with drawing.drawing_beside("tiny", "sqlite", ["tags"]) as beside:
        (tags,) = [t for t in beside(build_tables("tiny", "sqlite")) if t.table == "tags"]
        assert [list(c) for c in tags.data()] == [list(c) for c in _reference("tags")]


def test_an_error_in_the_loader_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drawing, "CHILD_FROM_ROWS", 0)
    before = _children()
    with pytest.raises(RuntimeError), drawing.drawing_beside("tiny", "sqlite", ["comments"]):
        started = _children() - before
        raise RuntimeError("the loader failed")
    assert started and not started & _children()


def test_seeding_with_the_child_gives_the_same_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings(scale="tiny")
    alone = db.sqlite_url(tmp_path / "alone.sqlite3").render_as_string()
    seed.seed(settings, url=alone)
    monkeypatch.setattr(drawing, "CHILD_FROM_ROWS", 0)
    beside = db.sqlite_url(tmp_path / "beside.sqlite3").render_as_string()
    seed.seed(settings, url=beside)
    assert aio.run(seed.content_checksum(alone)) == aio.run(seed.content_checksum(beside))


def _reference(name: str, backend: str = "sqlite") -> tuple[list, ...]:
    (table,) = [t for t in build_tables("tiny", backend) if t.table == name]
    return tuple(table.data())
