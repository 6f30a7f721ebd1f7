"""Chapter 8 (migrations): its checks, and the private Alembic folders, models and measurements its lesson uses."""

from course.chapters.ch08_migrations.checks import check, registry

__all__ = ["check", "registry"]
