"""Moved to course.tools.explain; this shim keeps older exercise notebooks working for one release."""

from course.tools.explain import *  # noqa: F403
