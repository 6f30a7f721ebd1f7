"""The one exception type that carries a message meant for a learner, not a traceback."""


class CourseError(Exception):
    """A problem the user can fix: the CLI prints its message on one line and exits non-zero."""
