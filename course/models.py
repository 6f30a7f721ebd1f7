"""Moved to course.domain.models; this shim keeps older exercise notebooks working for one release."""

from course.domain.models import *  # noqa: F403
