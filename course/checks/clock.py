"""A local time zone far from UTC for the learner's code, so a local time labelled UTC shows even on a UTC machine."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def machine_zone(zone: str) -> Iterator[None]:
    """Run with the process's local time zone set to zone (a POSIX TZ string such as "CHK-05:45"), then put it back."""
    if not hasattr(time, "tzset"):  # Windows: no tzset; the machine's own zone is used
        yield
        return
    previous = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()
