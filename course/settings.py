"""The course's settings, read once from environment variables with sensible defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from course.errors import CourseError

SCALES = ("tiny", "small", "large")
BACKENDS = ("sqlite", "postgres")
# Where the course's own PostgreSQL comes from: "auto" tries local binaries, then a Docker container.
POSTGRES_PROVIDERS = ("auto", "local", "container")


def project_root() -> Path:
    """The repository folder when the package is installed in editable mode, else the course checkout the working
    folder is in (a hub's kernel runs in ~/course/notebooks of a clone nbgitpuller made), else the working folder."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    cwd = Path.cwd()
    return next(
        (d for d in (cwd, *cwd.parents) if (d / "pyproject.toml").exists() and (d / "notebooks").is_dir()), cwd
    )


def _default_data_dir() -> Path:
    return project_root() / "data"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "course"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the course needs to know about where its data lives and how big it is."""

    database_url: str | None = None
    backend: str = "sqlite"
    scale: str = "small"
    data_dir: Path = field(default_factory=_default_data_dir)
    cache_dir: Path = field(default_factory=_default_cache_dir)
    require_postgres: bool = False
    postgres_provider: str = "auto"
    # The image of the container path; learners' Docker pulls the official one the first time.
    postgres_image: str = "postgres:17-alpine"

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise CourseError(f"unknown scale {self.scale!r}: choose one of {', '.join(SCALES)}")
        if self.backend not in BACKENDS:
            raise CourseError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        if self.postgres_provider not in POSTGRES_PROVIDERS:
            raise CourseError(
                f"unknown COURSE_POSTGRES_PROVIDER {self.postgres_provider!r}: choose one of {', '.join(POSTGRES_PROVIDERS)}"
            )


def _backend_from_url(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgres"
    raise CourseError(
        f"COURSE_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, got {url[:40]!r}"
    )


def get_settings(**overrides: object) -> Settings:
    """Read COURSE_* environment variables; keyword arguments win over the environment."""
    env = os.environ
    url = overrides.pop("database_url", None) or env.get("COURSE_DATABASE_URL") or None
    backend = overrides.pop("backend", None) or env.get("COURSE_BACKEND") or None
    if url and not backend:
        backend = _backend_from_url(str(url))
    elif url:
        _backend_from_url(str(url))
    values: dict[str, object] = {
        "database_url": url,
        "backend": str(backend or "sqlite").lower(),
        "scale": (str(overrides.pop("scale", None) or env.get("COURSE_SCALE") or "small")).lower(),
        "require_postgres": env.get("COURSE_REQUIRE_POSTGRES", "") not in ("", "0", "false"),
        "postgres_provider": (env.get("COURSE_POSTGRES_PROVIDER") or "auto").lower(),
    }
    if env.get("COURSE_DATA_DIR"):
        values["data_dir"] = Path(env["COURSE_DATA_DIR"])
    if env.get("COURSE_POSTGRES_IMAGE"):
        values["postgres_image"] = env["COURSE_POSTGRES_IMAGE"]
    if env.get("COURSE_CACHE_DIR"):
        values["cache_dir"] = Path(env["COURSE_CACHE_DIR"])
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
