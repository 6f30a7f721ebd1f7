"""Chapter 3 (the N+1 problem): its checks and the load counters the lesson and the checks use."""

from course.chapters.ch03_n_plus_one.checks import check, registry

__all__ = ["check", "registry"]
