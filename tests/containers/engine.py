"""A private Docker engine for one test: its own data root, socket and pid file; stopped and removed afterwards.

It runs with --bridge=none and --iptables=false: it must not touch the machine's network set-up, and the only
traffic the test sends goes to 127.0.0.1. Containers on it use the host's network (the course's container path
chooses that by itself on an engine without a bridge network) and listen on a free loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

READY_SECONDS = 60
# The engine's folder is a tmpfs where one can be mounted: importing the image and removing it all at the end take
# half the time they take on a busy disk. The image unpacks to ~200 MB, a tiny-scale server adds little.
TMPFS_SIZE = "4g"
# overlay2 is the fast one; vfs (a full copy per layer) works where overlay mounts are not allowed.
STORAGE_DRIVERS = ("overlay2", "vfs")


def why_not() -> str | None:
    """Why a private engine cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "a private Docker engine needs root"
    missing = [tool for tool in ("dockerd", "containerd", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install docker.io debootstrap)"
    return None


@dataclass
class Engine:
    """A running dockerd and where it keeps everything."""

    root: Path
    process: subprocess.Popen[bytes]
    driver: str
    tmpfs: bool

    @property
    def host(self) -> str:
        """The DOCKER_HOST that reaches it."""
        return f"unix://{self.root}/docker.sock"

    def client(self):  # type: ignore[no-untyped-def]
        import docker

        return docker.DockerClient(base_url=self.host, timeout=120)

    def log_tail(self, lines: int = 5) -> str:
        text = (self.root / "dockerd.log").read_text(errors="replace").splitlines()
        return " / ".join(text[-lines:])


def _launch(root: Path, driver: str) -> subprocess.Popen[bytes]:
    cmd = [
        "dockerd",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        "--bridge=none",
        "--iptables=false",
        f"--storage-driver={driver}",
    ]
    with open(root / "dockerd.log", "ab") as log:
        # A session of its own: stopping the engine signals its whole process group (dockerd and its containerd).
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(engine: Engine) -> bool:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            return False
        try:
            if engine.client().ping():
                return True
        except Exception:  # noqa: BLE001 - not listening yet: any failure means "poll again"
            pass
        time.sleep(0.2)
    return False


def start() -> Engine:
    """Start a private engine (overlay2, else vfs); RuntimeError with dockerd's last log lines when it cannot."""
    root = Path(tempfile.mkdtemp(prefix="course-docker-"))
    mount = ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "course-docker", str(root)]
    tmpfs = subprocess.run(mount, capture_output=True, check=False).returncode == 0
    for driver in STORAGE_DRIVERS:
        engine = Engine(root=root, process=_launch(root, driver), driver=driver, tmpfs=tmpfs)
        if _wait_ready(engine):
            return engine
        tail = engine.log_tail()
        _stop_process(engine)
    _remove_root(engine)
    raise RuntimeError(f"dockerd did not start with {' or '.join(STORAGE_DRIVERS)}: {tail}")


def _stop_process(engine: Engine) -> None:
    # dockerd first, alone: it shuts its containerd down itself (signalling both at once makes it wait for a
    # containerd that is already gone); then anything left in its process group.
    if engine.process.poll() is None:
        engine.process.terminate()
        try:
            engine.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.process.kill()
            engine.process.wait(timeout=10)
    try:
        os.killpg(engine.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _leftover_processes(root: Path) -> list[psutil.Process]:
    # containerd's shims leave the engine's process group on purpose (so containers outlive a dockerd restart);
    # they are found by the exec root in their command line.
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(root) in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(str(root) + "/")), key=len, reverse=True)


def stop(engine: Engine) -> None:
    """Remove its containers, stop dockerd, end what it left running, unmount and delete its folder."""
    try:
        client = engine.client()
        for container in client.containers.list(all=True):
            container.remove(force=True, v=True)
        client.close()
    except Exception:  # noqa: BLE001 - a dead engine has nothing to remove; the rest still runs
        pass
    _stop_process(engine)
    for proc in _leftover_processes(engine.root):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(_leftover_processes(engine.root), timeout=10)
    _remove_root(engine)


def _remove_root(engine: Engine) -> None:
    # What dockerd may leave mounted (its network namespace file, a layer of a killed container), then the tmpfs.
    for point in _mounts_under(engine.root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    if engine.tmpfs:
        subprocess.run(["umount", "-l", str(engine.root)], check=False, capture_output=True)
    shutil.rmtree(engine.root, ignore_errors=True)
