"""A throw-away bubblewrap sandbox per submission: its own user, PID, mount, network and IPC namespaces, the course
read-only, a private home and temp folder, a clean environment and resource limits.

What the sandbox sees: the system's program folders, the Python installation and the virtual environment, the
course package (not solutions/, not other submissions, not the grader's output), the seed file read-only, and the
run's own work folder read-write. No network at all: with the network namespace unshared only a private loopback
exists; on PostgreSQL the grader binds in a folder of the submission's own holding a unix socket relayed to the
server and a copy broker (course/grading/sandbox_db.py). Limits (setrlimit before bwrap starts, inherited by
everything inside): address space, processes, CPU seconds, file size (so output written to files is capped too)
and open files; where a cgroup can be made, one cap on the memory, processes and CPU share of all the submission's
processes together (course/grading/cgroups.py). When the sandbox's first process ends, the kernel kills every
process of its PID namespace: nothing a submission starts outlives it.
"""

from __future__ import annotations

import itertools
import os
import resource
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psutil

from course.grading import cgroups
from course.settings import Settings, project_root

# The uid/gid the submission runs as inside its user namespace (an unprivileged user, whoever starts the grader).
SANDBOX_UID = 1000
# Run as root, the grader gives each sandbox a uid of its own from here on (no such user exists on the machine).
FIRST_UID = 200_000
# The sandbox's /tmp (copies of the seed go there): in memory, at most this big.
TMP_BYTES = 2 * 2**30
TZ = "Asia/Kathmandu"  # +05:45: a local time labelled UTC shows up in the checks


@dataclass(frozen=True)
class Limits:
    """Per-process resource limits inside the sandbox."""

    memory_bytes: int = 3 * 2**30
    # All the submission's processes together (course/grading/cgroups.py), where a cgroup can be made.
    total_memory_bytes: int = 4 * 2**30
    processes: int = 256
    cpu_seconds: int = 600
    file_bytes: int = 512 * 2**20
    open_files: int = 1024

    def preexec(self) -> Callable[[], None]:
        processes = self.processes
        if os.geteuid() != 0:
            # Not root: the sandbox keeps this user's uid, whose other processes count towards the limit too.
            processes += sum(
                1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == os.getuid()
            )

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
            resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return apply


def bwrap() -> str | None:
    return shutil.which("bwrap")


@cache
def unavailable() -> str | None:
    """Why no sandbox can be made here (one line), or None when bubblewrap works."""
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform}: grading in a sandbox needs Linux with bubblewrap"
    exe = bwrap()
    if exe is None:
        return "bubblewrap (bwrap) is not installed: install the `bubblewrap` package to grade in a sandbox"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return (
            "setpriv (util-linux) is not installed: as root the sandbox needs it to drop to an unprivileged user"
        )
    uid = _new_uid()
    probe = [
        *_namespaces(uid),
        "--ro-bind",
        "/",
        "/",
        "--size",
        "1048576",
        "--tmpfs",
        "/tmp",
        "--",
        *_drop(uid),
        "true",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if done.returncode != 0:
        reason = " ".join(done.stderr.decode(errors="replace").split())[:200] or f"exit {done.returncode}"
        return f"bubblewrap cannot make a sandbox here (user namespaces off?): {reason}"
    return None


_next_uid = itertools.count()


def _new_uid() -> int | None:
    """As root: a uid of this sandbox's own (so the process limit counts its processes only); else None."""
    if os.geteuid() != 0:
        return None
    return FIRST_UID + (os.getpid() * 1000 + next(_next_uid)) % 1_000_000


def made_here(uid: int, pid: int | None = None) -> bool:
    """Whether uid is one this process (or grader pid) gives its sandboxes (tests look for their own leftovers)."""
    return uid >= FIRST_UID and (uid - FIRST_UID) // 1000 == (pid or os.getpid()) % 1000


def _namespaces(uid: int | None) -> list[str]:
    exe = bwrap() or "bwrap"
    # A host name of its own: copies record their maker's machine and pid, and a pid of one sandbox's namespace
    # means nothing in another's (course/db/postgres/owners.py would take a sibling's copy for abandoned).
    common = ["--die-with-parent", "--new-session", "--hostname", f"sandbox-{secrets.token_hex(4)}"]
    if uid is None:
        # An ordinary user: bubblewrap makes a user namespace and maps the user to an unprivileged id inside.
        return [exe, "--unshare-all", *common, "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    # Root: every namespace but the user's; setpriv then drops to a uid of the sandbox's own, with no capabilities.
    return [
        exe,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        *common,
    ]


def _drop(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
        "--no-new-privs", "--",
    ]  # fmt: skip


def _read_only_paths(settings: Settings) -> list[Path]:
    root = project_root()
    paths = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")]
    paths += [Path(sys.base_prefix), Path(sys.prefix), Path(sys.prefix).resolve()]
    # The course package and what marks the project root; never solutions/, exercises/ or anything else there.
    paths += [root / "course", root / "pyproject.toml"]
    seed = _seed_file(settings)
    if seed is not None:
        paths.append(seed)
    return paths


def _seed_file(settings: Settings) -> Path | None:
    if settings.backend != "sqlite" or settings.database_url:
        return None
    return settings.data_dir / f"course_{settings.scale}.sqlite3"


def command(
    argv: list[str],
    *,
    work: Path,
    settings: Settings,
    env: Mapping[str, str] | None = None,
    uid: int | None = None,
    ro_binds: Sequence[Path] = (),
) -> list[str]:
    """The bwrap command line that runs argv in a new sandbox whose only writable folder is work.

    ro_binds: more folders the sandbox sees read-only (the database's sockets, course/grading/sandbox_db.py).
    """
    if bwrap() is None:
        raise RuntimeError("bubblewrap is not installed")
    home = work / "home"
    home.mkdir(exist_ok=True)
    # The private temp folder lives in memory: its size is capped, so no submission fills the machine's memory.
    tmp = ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs"]
    args = [*_namespaces(uid), "--proc", "/proc", "--dev", "/dev", *tmp, "/tmp"]
    binds = list(dict.fromkeys(str(p) for p in [*_read_only_paths(settings), *ro_binds] if p.exists()))
    # Folders on the way to each bind are made here, readable by all (bwrap's own would be private to root).
    made: set[str] = {"/", "/tmp"}
    for target in [*binds, str(work)]:
        for parent in reversed(Path(target).parents):
            if str(parent) in made or any(str(parent).startswith(b + "/") or str(parent) == b for b in binds):
                continue
            made.add(str(parent))
            args += ["--dir", str(parent)]
    seed = _seed_file(settings)
    if seed is not None and seed.exists():
        # SQLite reads a WAL database only where it may make its -shm file: a private folder around the seed.
        args += [*tmp, str(seed.parent)]
    for path in binds:
        args += ["--ro-bind", path, path]
    # Secrets a user may read on this machine stay out of view.
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers"):
        if Path(secret).exists():
            args += ["--ro-bind", "/dev/null", secret]
    args += ["--bind", str(work), str(work), "--chdir", str(work), "--clearenv"]
    base = {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "TZ": TZ,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "COURSE_SCALE": settings.scale,
        "COURSE_BACKEND": settings.backend,
        "COURSE_DATA_DIR": str(settings.data_dir),
        "COURSE_CACHE_DIR": str(home / ".cache"),
        "VIRTUAL_ENV": sys.prefix,
    }
    for name, value in {**base, **(env or {})}.items():
        args += ["--setenv", name, value]
    return [*args, "--", *_drop(uid), *argv]


def popen(
    argv: list[str],
    *,
    work: Path,
    settings: Settings,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    ro_binds: Sequence[Path] = (),
    group: cgroups.Group | None = None,
    **kwargs: object,
) -> subprocess.Popen[bytes]:
    """Start argv in a new sandbox (its own session, so the grader can kill the whole sandbox at once).

    group: the submission's cgroup, entered before bubblewrap starts (so everything the sandbox runs is in it).
    """
    uid = _new_uid()
    # Made before the hand-over below, so the sandbox's user owns its home (course code writes its cache there).
    (work / "home").mkdir(exist_ok=True)
    if uid is not None:
        # The sandbox's own user owns its work folder, and nothing else on the machine.
        for folder, _, files in os.walk(work):
            os.chown(folder, uid, uid)
            for name in files:
                os.chown(os.path.join(folder, name), uid, uid)
    cmd = command(argv, work=work, settings=settings, env=env, uid=uid, ro_binds=ro_binds)
    # The grader's own environment (tokens, passwords) never reaches bwrap: --clearenv is the second guard.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    limit = limits.preexec()

    def preexec() -> None:
        if group is not None:
            group.enter()
        limit()

    return subprocess.Popen(  # type: ignore[call-overload]
        cmd, env=clean, preexec_fn=preexec, start_new_session=True, **kwargs
    )
