"""What SQLite's journal mode changes for concurrent readers and writers, shown on a scratch file."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

# Short: the demonstration wants the answer "locked", not a long wait for it.
WAIT_SECONDS = 0.2


def reader_meets_writer(journal_mode: str) -> dict[str, object]:
    """A reader keeps a transaction open while a writer updates and commits; what each one experiences."""
    with tempfile.TemporaryDirectory(prefix="course-journal-") as folder:
        path = Path(folder) / "journal.sqlite3"
        reader = sqlite3.connect(path, isolation_level=None, timeout=WAIT_SECONDS)
        writer = sqlite3.connect(path, isolation_level=None, timeout=WAIT_SECONDS)
        try:
            reader.execute(f"PRAGMA journal_mode={journal_mode}")
            reader.execute("CREATE TABLE t (v INTEGER)")
            reader.execute("INSERT INTO t VALUES (1)")
            reader.execute("BEGIN")
            before = reader.execute("SELECT v FROM t").fetchone()[0]
            writer.execute("BEGIN")
            writer.execute("UPDATE t SET v = 2")
            try:
                writer.execute("COMMIT")
                commit = "went through"
            except sqlite3.OperationalError as exc:
                commit = f"failed: {exc}"
                writer.execute("ROLLBACK")
            during = reader.execute("SELECT v FROM t").fetchone()[0]
            reader.execute("COMMIT")
            after = reader.execute("SELECT v FROM t").fetchone()[0]
        finally:
            reader.close()
            writer.close()
    return {
        "journal mode": journal_mode,
        "reader saw (in its transaction)": f"{before}, then {during}",
        "writer's COMMIT while the reader is open": commit,
        "value afterwards": after,
    }
