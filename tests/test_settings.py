"""Settings come from COURSE_* variables, with clear errors for values that cannot work."""

import pytest

from course.errors import CourseError
from course.settings import get_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COURSE_DATABASE_URL", "COURSE_BACKEND", "COURSE_SCALE"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert (settings.backend, settings.scale, settings.database_url) == ("sqlite", "small", None)


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_BACKEND", "Postgres")
    monkeypatch.setenv("COURSE_SCALE", "large")
    settings = get_settings()
    assert (settings.backend, settings.scale) == ("postgres", "large")


def test_url_implies_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_BACKEND", raising=False)
    monkeypatch.setenv("COURSE_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert get_settings().backend == "postgres"


def test_keyword_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_SCALE", "large")
    assert get_settings(scale="tiny").scale == "tiny"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COURSE_SCALE", "huge", "unknown scale 'huge'"),
        ("COURSE_BACKEND", "mysql", "unknown backend 'mysql'"),
        ("COURSE_DATABASE_URL", "mysql://x/y", "must start with sqlite"),
    ],
)
def test_bad_values_give_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(CourseError, match=message) as info:
        get_settings()
    assert "\n" not in str(info.value)
