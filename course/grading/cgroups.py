"""A cgroup per submission: one cap on the memory and the processes of everything it runs, together.

Rlimits (sandbox.Limits) cap each process alone: a submission that forks fifty children of 3 GiB each passes every
one of them. A cgroup counts them all: with memory.max reached the kernel's OOM killer ends processes of that
submission only, pids.max stops its forks, and (where the cpu controller is there) cpu.max gives it one
core's worth of CPU time, so it cannot starve the submissions graded beside it. Made where the grader may write to the cgroup file system (root,
as in CI): cgroup v2 (a `course-grade` folder at the hierarchy's root, so its controllers may be handed down), else
the memory and pids hierarchies of cgroup v1 (under the grader's own groups). Elsewhere `unavailable()` says why
in one line and the rlimits stay the only limits.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from functools import cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "course-grade"
# CPU time per period a submission may use (1: one core's worth), so a hog cannot starve those graded beside it.
CPUS = 1
PERIOD = 100_000  # microseconds
_counter = itertools.count()


class Group:
    """One submission's cgroup (one folder on v2, one per controller on v1)."""

    def __init__(self, folders: list[Path], *, v2: bool) -> None:
        self.folders, self.v2 = folders, v2

    def enter(self) -> None:
        """Put the calling process in the group (from a preexec function: what it starts stays in the group)."""
        for folder in self.folders:
            fd = os.open(folder / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)

    def oom_kills(self) -> int:
        """How many processes the OOM killer ended in this group so far."""
        events = self.folders[0] / ("memory.events" if self.v2 else "memory.oom_control")
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def _pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError, ValueError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return found

    def close(self, *, wait: float = 10.0) -> None:
        """Kill whatever is still in the group and remove it."""
        deadline = time.monotonic() + wait
        while True:
            left = self._pids()
            if not left:
                break
            if self.v2 and (self.folders[0] / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (self.folders[0] / "cgroup.kill").write_text("1")
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for folder in self.folders:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # The last processes are still being reaped: the folder goes when they are.
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _v2_parent() -> Path:
    """ROOT/course-grade with the memory and pids controllers handed down to its children."""
    if not {"memory", "pids"} <= set((ROOT / "cgroup.controllers").read_text().split()):
        raise OSError("the cgroup v2 hierarchy offers no memory and pids controllers")
    enabled = set((ROOT / "cgroup.subtree_control").read_text().split())
    if not {"memory", "pids"} <= enabled:
        _write(ROOT / "cgroup.subtree_control", "+memory +pids")
    parent = ROOT / PARENT
    parent.mkdir(exist_ok=True)
    if not {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text().split()):
        _write(parent / "cgroup.subtree_control", "+memory +pids")
    with contextlib.suppress(OSError):  # a CPU share too where the cpu controller is there to hand down
        for folder in (ROOT, parent):
            if "cpu" not in (folder / "cgroup.subtree_control").read_text().split():
                _write(folder / "cgroup.subtree_control", "+cpu")
    return parent


def _v1_own(controller: str) -> Path:
    """The folder of this process's own cgroup in a v1 hierarchy (the new group goes under it)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            folder = ROOT / controller / path.lstrip("/")
            if (folder / "cgroup.procs").exists():
                return folder
    raise OSError(f"no cgroup v1 {controller} hierarchy of this process at {ROOT / controller}")


def new_group(memory_bytes: int, processes: int) -> Group:
    """A new group capped at memory_bytes and processes (OSError when none can be made here)."""
    name = f"{PARENT}-{os.getpid()}-{next(_counter)}"
    if (ROOT / "cgroup.controllers").exists():
        folder = _v2_parent() / name
        folder.mkdir()
        group = Group([folder], v2=True)
        try:
            _write(folder / "memory.max", str(memory_bytes))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(processes))
        except OSError:
            group.close()
            raise
        with contextlib.suppress(OSError):
            _write(folder / "cpu.max", f"{CPUS * PERIOD} {PERIOD}")
        return group
    memory, pids = _v1_own("memory") / name, _v1_own("pids") / name
    memory.mkdir()
    group = Group([memory], v2=False)
    try:
        pids.mkdir()
        group.folders.append(pids)
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():
            # Swap counts too, so the cap is not met by swapping the submission out.
            with contextlib.suppress(OSError):
                _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
        _write(pids / "pids.max", str(processes))
    except OSError:
        group.close()
        raise
    with contextlib.suppress(OSError):
        cpu = _v1_own("cpu") / name
        cpu.mkdir()
        group.folders.append(cpu)
        _write(cpu / "cpu.cfs_period_us", str(PERIOD))
        _write(cpu / "cpu.cfs_quota_us", str(CPUS * PERIOD))
    return group


def alive(pid: int) -> bool:
    """Whether process pid exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[Path]:
    """Remove the groups of graders that were killed (SIGKILL leaves them); return what was removed."""
    if unavailable() is not None:
        return []
    places = [ROOT / PARENT] if (ROOT / "cgroup.controllers").exists() else []
    for controller in ("memory", "pids", "cpu"):
        with contextlib.suppress(OSError):
            places.append(_v1_own(controller))
    removed = []
    for place in places:
        for folder in place.glob(f"{PARENT}-*-*"):
            pid = folder.name.removeprefix(f"{PARENT}-").split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                Group([folder], v2=place == ROOT / PARENT).close(wait=2.0)
                removed.append(folder)
    return removed


@cache
def unavailable() -> str | None:
    """Why no cgroup can be made here (one line), or None when new_group works."""
    try:
        new_group(2**30, 16).close()
    except OSError as exc:
        return (
            f"no cgroup for the submissions ({exc.strerror or exc}): memory is capped per process only "
            "(run as root with a writable /sys/fs/cgroup for a cap on each submission's total)"
        )
    return None
