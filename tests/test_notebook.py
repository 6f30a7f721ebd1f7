"""A lesson's set-up gives a working engine on a private copy, says where it runs, and cleans up."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from course import db, seed
from course.domain.models import User
from course.settings import Settings
from course.tools import lesson as notebook


async def test_setup_connects_to_a_private_copy(
    tiny: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COURSE_BACKEND", tiny.backend)
    lesson = await notebook.setup(scale="tiny")
    try:
        assert "Backend:" in capsys.readouterr().out
        async with lesson.Session() as session:
            assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == 200
        assert lesson.dialect == ("sqlite" if tiny.backend == "sqlite" else "postgresql")
        assert lesson.sync_url.drivername in ("sqlite", "postgresql+psycopg")
        assert lesson.url != seed.seed_url(lesson.settings), "a lesson must never work on the seed itself"
    finally:
        await lesson.close()
    assert lesson.copy.dropped
    if tiny.backend == "sqlite":
        assert not Path(db.sqlite_path(lesson.url)).exists()
