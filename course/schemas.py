"""Moved to course.domain.schemas; this shim keeps older exercise notebooks working for one release."""

from course.domain.schemas import *  # noqa: F403
