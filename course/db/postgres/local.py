"""Runs a private PostgreSQL server from local binaries (found by binaries.py): initdb, start, stop, read its state."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from course.db.postgres import secret
from course.db.postgres.secret import AUTH_METHOD
from course.errors import CourseError

log = logging.getLogger(__name__)

PORT_FILE = "course.port"
LOG_FILE = "course-server.log"
# A user namespace maps us to an ordinary uid inside while files stay root's outside.
UNSHARE = ("unshare", "--user", "--map-user=1000", "--map-group=1000")


def data_dir_for(cache_dir: Path, provider: str, version: str) -> Path:
    """Where a provider's cluster lives; each major version gets its own (data files are not portable)."""
    return cache_dir / "postgres" / f"{provider}-{version.split('.')[0]}"


@contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so two processes don't init or start the same cluster at once."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.parent / f"{data_dir.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---- running as a user PostgreSQL accepts ----


@functools.cache
def run_mode() -> str:
    """How commands run: "direct" (not root), "unshare" (root, user namespaces allowed) or "nobody"."""
    if os.geteuid() != 0:
        return "direct"
    if shutil.which("unshare"):
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True)
        if probe.returncode == 0:
            return "unshare"
    log.debug("user namespaces are blocked; PostgreSQL will run as nobody")
    return "nobody"


def _as_server_user(cmd: list[str]) -> list[str]:
    mode = run_mode()
    if mode == "unshare":
        return [*UNSHARE, *cmd]
    if mode == "nobody":
        return ["runuser", "-u", "nobody", "--", *cmd]
    return cmd


def _check_nobody_can_enter(data_dir: Path) -> None:
    # nobody must be able to walk down to the data dir; we don't loosen the user's folders for it.
    for parent in data_dir.parents:
        if not parent.stat().st_mode & 0o001:
            raise CourseError(
                f"PostgreSQL must run as 'nobody' here, who cannot enter {parent}: "
                "set COURSE_CACHE_DIR to a folder others can enter (e.g. /tmp/course-cache)"
            )


def _run(
    cmd: list[str], *, stdout: int | IO[str] = subprocess.PIPE, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    # PG* variables (PGDATA, PGPORT...) from the user's shell must not steer our private server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return subprocess.run(
        _as_server_user(cmd),
        stdin=subprocess.DEVNULL if input is None else None,
        input=input,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=60,
    )


# The default log_line_prefix: "2026-01-31 12:00:00.123 UTC [4242] ".
LOG_PREFIX = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] ")


def _tail(text: str, lines: int = 2, width: int = 300) -> str:
    """The last lines of a log on one line, preferring the server's own lines over pg_ctl's summary."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    server = [" ".join(line[match.end() :].split()) for line in kept if (match := LOG_PREFIX.search(line))]
    tail = " | ".join((server or kept)[-lines:])
    return tail if len(tail) <= width else tail[: width - 1] + "…"


# ---- cluster state ----


def initialised(data_dir: Path) -> bool:
    # The port file is written only after initdb succeeds, so it marks a complete cluster.
    return (data_dir / "PG_VERSION").exists() and (data_dir / PORT_FILE).exists()


def init_cluster(bin_dir: Path, data_dir: Path) -> None:
    """Create a fresh cluster whose superuser logs in with the cluster's secret, wiping an interrupted initdb."""
    if data_dir.exists():
        log.debug("wiping half-initialised cluster %s", data_dir)
        shutil.rmtree(data_dir)
    if run_mode() == "nobody":
        _check_nobody_can_enter(data_dir)
    data_dir.mkdir(parents=True, mode=0o700)
    _give_to_server_user(data_dir)
    # --no-sync because the data is throw-away.
    cmd = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", f"--auth={AUTH_METHOD}", "--no-sync"]
    with secret.password_file(data_dir, prepare=_give_to_server_user) as pwfile:
        result = _run([*cmd, f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C"])
    if result.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise CourseError(f"initdb failed in {data_dir}: {_tail(result.stdout)}")
    secret.write_hba(data_dir)
    (data_dir / PORT_FILE).write_text(str(free_port()))


# ---- password-only logins ----


def _give_to_server_user(path: Path) -> None:
    if run_mode() == "nobody":
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


def needs_securing(data_dir: Path) -> bool:
    """True for a cluster that lets anyone in without a password (made before logins needed one) or lost its secret."""
    return not secret.hba_is_private(data_dir) or secret.read_secret(data_dir) is None


def secure_cluster(bin_dir: Path, data_dir: Path) -> None:
    """Give a stopped cluster a new secret and password-only logins (how clusters made with `trust` are upgraded)."""
    value = secret.new_secret(data_dir)
    # Single-user mode sets the password with no server listening, so there is no moment of open access.
    sql = f"SET password_encryption = '{AUTH_METHOD}';\nALTER ROLE postgres WITH PASSWORD '{value}';\n"
    cmd = [str(bin_dir / "postgres"), "--single", "-F", "-D", str(data_dir), "postgres"]
    result = _run(cmd, input=sql)
    if result.returncode != 0 or "ERROR" in result.stdout:
        secret.secret_path(data_dir).unlink(missing_ok=True)
        raise CourseError(f"could not set the password of the cluster in {data_dir}: {_tail(result.stdout)}")
    secret.write_hba(data_dir)
    log.debug("cluster %s now needs its password (%s)", data_dir, AUTH_METHOD)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A recycled pid may belong to anything; only a postgres process counts.
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def live_pid(data_dir: Path) -> int | None:
    """The pid in postmaster.pid if that process is still a running postgres, else None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, NotADirectoryError, IndexError, ValueError):
        return None
    return pid if _alive(pid) else None


def running_port(data_dir: Path) -> int | None:
    """The port of the cluster's live, ready postmaster, from postmaster.pid; None when it is not up."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    # Line 4 is the port and line 8 the status; a server still starting up is not "ready".
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[3].isdigit() or live_pid(data_dir) is None:
        return None
    return int(lines[3])


def remove_stale_pid(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    if pid_file.exists() and live_pid(data_dir) is None:
        log.debug("removing stale %s: its process is gone", pid_file)
        pid_file.unlink()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Match PostgreSQL, which sets SO_REUSEADDR, so TIME_WAIT leftovers don't count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _choose_port(data_dir: Path) -> int:
    port_file = data_dir / PORT_FILE
    saved = int(port_file.read_text().strip() or 0)
    port = saved if saved and port_is_free(saved) else free_port()
    if port != saved:
        port_file.write_text(str(port))
    return port


def start_cluster(bin_dir: Path, data_dir: Path) -> int:
    """Start the cluster (caller holds the lock and knows it is down) and return its port."""
    remove_stale_pid(data_dir)
    port = _choose_port(data_dir)
    # -k '' disables the unix socket; -F skips fsync because the data is throw-away.
    options = f"-h 127.0.0.1 -k '' -p {port} -F"
    cmd = [str(bin_dir / "pg_ctl"), "-w", "-t", "30", "-D", str(data_dir), "-o", options, "start"]
    # The postmaster inherits this file as its stderr, so it works whichever user the server runs as.
    with open(data_dir / LOG_FILE, "w") as server_log:
        result = _run(cmd, stdout=server_log)
    if result.returncode != 0:
        raise CourseError(
            f"PostgreSQL did not start (log {data_dir / LOG_FILE}): "
            f"{_tail((data_dir / LOG_FILE).read_text(errors='replace'))}"
        )
    log.debug("started PostgreSQL on port %d via %s", port, run_mode())
    return port


def stop_cluster(bin_dir: Path, data_dir: Path) -> bool:
    """Stop the cluster with a fast shutdown; True if one was running."""
    if live_pid(data_dir) is None:
        remove_stale_pid(data_dir)
        return False
    result = _run([str(bin_dir / "pg_ctl"), "-w", "-D", str(data_dir), "stop", "-m", "fast"])
    if result.returncode != 0:
        raise CourseError(f"pg_ctl stop failed for {data_dir}: {_tail(result.stdout)}")
    return True
