"""What a test does when a system package it needs is missing: skip with one line, or fail where CI requires it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

# .ci/run sets it after installing .ci/apt-packages: there a missing package is a broken CI machine, not a skip.
REQUIRE_SYSTEM_PACKAGES = os.environ.get("COURSE_REQUIRE_SYSTEM_PACKAGES", "") not in ("", "0", "false")


def missing(what: str) -> NoReturn:
    """Skip the test because `what` cannot be had here (fail instead under COURSE_REQUIRE_SYSTEM_PACKAGES=1)."""
    if REQUIRE_SYSTEM_PACKAGES:
        pytest.fail(f"COURSE_REQUIRE_SYSTEM_PACKAGES=1 but {what}")
    pytest.skip(what)
