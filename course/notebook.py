"""Moved to course.tools.lesson; this shim keeps older exercise notebooks working for one release."""

from course.tools.lesson import *  # noqa: F403
