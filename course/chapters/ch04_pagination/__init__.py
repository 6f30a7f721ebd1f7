"""Chapter 4 (pagination): its checks and the page, cursor and cost judges they use."""

from course.chapters.ch04_pagination.checks import check, registry

__all__ = ["check", "registry"]
