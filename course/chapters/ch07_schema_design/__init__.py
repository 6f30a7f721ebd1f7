"""Chapter 7 (schema design): its checks, the UUID v7 helper and the small demo schemas the lesson builds."""

from course.chapters.ch07_schema_design.checks import check, registry

__all__ = ["check", "registry"]
