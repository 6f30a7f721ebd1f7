"""Chapter 1 (CRUD): its checks; notebooks import `check` from here."""

from course.chapters.ch01_crud.checks import check, registry

__all__ = ["check", "registry"]
