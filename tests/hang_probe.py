"""Not collected by the suite (no test_ prefix): tests/test_parallel.py runs it in a nested pytest to show that a
test stuck past its timeout is reported, with its stacks, and the run goes on."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.mark.timeout(1)
def test_stuck_in_cleanup() -> None:
    # The timeout's exception reaches the main thread, which then waits for the pool's thread on the way out.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(time.sleep, 600).result()


def test_after_it() -> None:
    pass
