"""Chapter 6 (connection pooling): its checks, the FastAPI demo app, the load generator and the server helpers."""

from course.chapters.ch06_pooling.checks import check, registry

__all__ = ["check", "registry"]
