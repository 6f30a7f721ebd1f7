"""Who owns a copy database (machine, process, creation time, kept in its COMMENT) and when it is provably abandoned.

Many machines may share one PostgreSQL (a class). A process id means something only on the machine that made it, so
a copy is reaped early only by a run on its own machine once its process is gone; elsewhere it must be idle (no
connections) and older than a grace period. Copies with no readable owner are never reaped.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import psutil

KIND = "course-copy"
# An idle copy from another machine is left alone this long: a learner may simply be reading between two cells.
GRACE_SECONDS = 6 * 3600
Verdict = Literal["owner-gone", "idle-too-long"] | None


@functools.cache
def this_machine() -> str:
    """The host name plus this boot's id: process ids are only comparable within one machine and one boot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


def start_token(pid: int) -> str | None:
    """When the process started (it tells a recycled process id from the original); None when it is gone."""
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except psutil.AccessDenied:
        # It exists, we may not look: treat it as the original, which keeps its copies.
        return "unknown"
    except psutil.NoSuchProcess:
        pass
    # /proc may hide other users' processes (hidepid): only "no such process" from the kernel itself is proof.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return "unknown"
    return "unknown"


@dataclass(frozen=True)
class Owner:
    """The process that made a copy; `created` is the server's clock (seconds since the epoch), never ours."""

    machine: str
    pid: int
    start: str
    created: float | None = None

    def comment(self) -> str:
        return json.dumps({"kind": KIND, **asdict(self)}, sort_keys=True)

    def process_is_gone(self) -> bool:
        """Only answerable on the owner's machine: the pid has ended or now belongs to another process."""
        now = start_token(self.pid)
        return now is None or (now != "unknown" and now != self.start)


def this_process() -> Owner:
    """The owner to record on a copy made now, by this process (a forked child is its own owner)."""
    pid = os.getpid()
    return Owner(machine=this_machine(), pid=pid, start=_start_of(pid))


@functools.cache
def _start_of(pid: int) -> str:
    return start_token(pid) or "unknown"


def parse(comment: str | None) -> Owner | None:
    """The owner recorded in a database's comment, or None for anything else (then the copy is never reaped)."""
    try:
        data = json.loads(comment or "")
        if data.pop("kind") != KIND:
            return None
        owner = Owner(
            machine=str(data["machine"]),
            pid=int(data["pid"]),
            start=str(data["start"]),
            created=float(data["created"]),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return owner


def verdict(owner: Owner | None, *, connections: int, server_now: float) -> Verdict:
    """Why a copy may be dropped, or None when it must stay."""
    if owner is None or owner.created is None:
        return None
    if owner.machine == this_machine():
        # Our own machine can tell: a live owner keeps its copies, however old or idle.
        return "owner-gone" if owner.process_is_gone() else None
    if connections == 0 and server_now - owner.created > GRACE_SECONDS:
        return "idle-too-long"
    return None
