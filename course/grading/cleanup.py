"""The runner's clean-up of one notebook run: the kernel it started, and every copy of the seed that kernel made.

The kernel is started by nbval in a session of its own, so killing pytest's process group does not reach it: it
writes its process id to a file at start-up (KERNEL_PID, run from the run's own IPython profile) and the runner
kills it by that id, after checking that the process still carries this run's tag (a reused id is left alone).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

from course.db import aio, copies
from course.settings import Settings

PIDS_ENV = "COURSE_KERNEL_PIDS"
# Appended to the kernel's start-up file. It also numbers the cells as they run: nbval runs them without history,
# so IPython would call every cell In [1], and a learner's error would point at the wrong cell.
KERNEL_STARTUP = f"""
import os as _course_os

if _course_os.environ.get({PIDS_ENV!r}):
    with open(_course_os.environ[{PIDS_ENV!r}], "a") as _course_out:
        _course_out.write(f"{{_course_os.getpid()}}\\n")
    del _course_out
del _course_os


def _course_number_cells():
    shell = get_ipython()  # noqa: F821 - IPython's start-up namespace has it

    def count(_result):
        shell.execution_count += 1

    shell.events.register("post_run_cell", count)


_course_number_cells()
del _course_number_cells
"""


@dataclass
class Run:
    """One run's clean-up: its copy folder, its PostgreSQL tag and the file where its kernels note their ids."""

    folder: Path
    tag: str
    pids: Path

    def env(self) -> dict[str, str]:
        """What the kernel needs to make its copies where this run can find them."""
        return {copies.RUN_DIR_ENV: str(self.folder), copies.RUN_TAG_ENV: self.tag, PIDS_ENV: str(self.pids)}

    def clean_up(self, settings: Settings) -> list[str]:
        """Kill the run's kernels, drop its PostgreSQL copies, delete its folder; return what could not be done."""
        problems = []
        self.kill_kernels()
        if settings.backend == "postgres":
            try:
                aio.run(self._drop_databases(settings))
            except Exception as exc:  # noqa: BLE001 - report, and still delete the folder
                problems.append(f"could not drop the run's PostgreSQL copies (tag {self.tag}): {exc}")
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.folder.exists():
            problems.append(f"could not delete {self.folder}")
        return problems

    async def _drop_databases(self, settings: Settings) -> None:
        from course.db.postgres import admin as pg_admin

        await copies.drop_run_copies(pg_admin.admin_url(settings), self.tag)

    def kill_kernels(self) -> None:
        try:
            lines = self.pids.read_text(encoding="utf-8").split()
        except OSError:
            return
        for line in lines:
            if line.isdigit() and self._ours(int(line)):
                # The kernel leads its own session: the group kill also takes what it started.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if os.getpgid(int(line)) == int(line):
                        os.killpg(int(line), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(line), signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    psutil.Process(int(line)).wait(timeout=5)

    def _ours(self, pid: int) -> bool:
        try:
            return psutil.Process(pid).environ().get(copies.RUN_TAG_ENV) == self.tag
        except psutil.Error:
            return False
