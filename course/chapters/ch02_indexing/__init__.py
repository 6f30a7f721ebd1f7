"""Chapter 2 (indexing): its checks and the index catalogue the lesson uses."""

from course.chapters.ch02_indexing.checks import check, registry

__all__ = ["check", "registry"]
