"""Moved to course.chapters.ch04_pagination.checks; this shim keeps older exercise notebooks working for one release."""

from course.chapters.ch04_pagination.checks import *  # noqa: F403
