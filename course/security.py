"""Moved to course.domain.security; this shim keeps older exercise notebooks working for one release."""

from course.domain.security import *  # noqa: F403
