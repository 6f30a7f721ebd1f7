"""Moved to course.chapters.ch01_crud.checks; this shim keeps older exercise notebooks working for one release."""

from course.chapters.ch01_crud.checks import *  # noqa: F403
