"""The local server's password: a generated secret kept beside the cluster (mode 600), and password-only pg_hba.conf."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

AUTH_METHOD = "scram-sha-256"
# No unix socket (the server starts with -k ''), so only TCP on the loopback interface, and only with the password.
HBA = f"""# Written by the course: password ({AUTH_METHOD}) logins only, over TCP on the loopback interface.
host    all    all    127.0.0.1/32    {AUTH_METHOD}
host    all    all    ::1/128         {AUTH_METHOD}
"""


def secret_path(data_dir: Path) -> Path:
    """Where a cluster's password lives: beside its data folder, in the cache, readable by this user only."""
    return data_dir.parent / f"{data_dir.name}.secret"


def read_secret(data_dir: Path) -> str | None:
    try:
        return secret_path(data_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    # O_EXCL with mode 600: the file is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def new_secret(data_dir: Path) -> str:
    """Generate and keep a new password for the cluster (replacing any old one)."""
    value = secrets.token_hex(24)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _write_private(secret_path(data_dir), value + "\n")
    return value


@contextmanager
def password_file(data_dir: Path, *, prepare: Callable[[Path], None]) -> Iterator[Path]:
    """A new secret in a short-lived mode-600 file for initdb --pwfile; prepare() lets the server's user read it."""
    path = data_dir.parent / f".{data_dir.name}.pwfile-{os.getpid()}"
    _write_private(path, new_secret(data_dir) + "\n")
    try:
        prepare(path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def write_hba(data_dir: Path) -> None:
    # Rewritten in place, so the file keeps the owner the server runs as.
    with open(data_dir / "pg_hba.conf", "w") as out:
        out.write(HBA)


def hba_is_private(data_dir: Path) -> bool:
    """False for a pg_hba.conf the course did not write, such as one that trusts every local user."""
    try:
        return (data_dir / "pg_hba.conf").read_text() == HBA
    except FileNotFoundError:
        return True
