"""Moved to course.chapters.ch02_indexing.checks; this shim keeps older exercise notebooks working for one release."""

from course.chapters.ch02_indexing.checks import *  # noqa: F403
