"""Nothing leaks: after `course check` and `course grade` (finished, dying and stopped kernels, Ctrl-C) no copy is left
(the `course check` runs, of finished and dying kernels, are test_runner.py's own, which assert it too).

Every subprocess gets a private temp folder, so the count is exact even while other tests run; on PostgreSQL the
count is of copies that carry a run tag (only runs started by `course check`/`course grade` make those).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from course.db import copies
from course.db.postgres import admin as pg_admin
from course.settings import get_settings
from tests.fixtures.tooling import FIXTURES, KERNEL_ENV, course, variant

# A cell that makes two more copies and never drops them, and a chapter 8 migrations folder (removed only when
# its kernel exits cleanly): only the runner can clean those up when it has to kill the kernel.
HOARD = (
    "from course.chapters.ch08_migrations.workspace import Migrations\n"
    "from course.seed.fresh import create_copy\n\n"
    "hoard = [await create_copy() for _ in range(2)]\n"
    "workspace = Migrations('sqlite+aiosqlite:///unused.sqlite3')"
)
# A cell that ignores the interrupt at its time limit, so the runner has to stop the kernel.
STUBBORN = (
    "import time\n\nwhile True:\n    try:\n        time.sleep(60)\n    except KeyboardInterrupt:\n        pass"
)
DYING = "import os\n\nos._exit(3)"


def _with(dest: Path, *sources: str) -> Path:
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        for offset, source in enumerate(sources):
            nb.cells.insert(2 + offset, nbformat.v4.new_code_cell(source))

    return variant(dest, edit)


def _tagged_databases(backend: str) -> list[str]:
    if backend != "postgres":
        return []

    async def names() -> list[str]:
        conn = await pg_admin.connect(pg_admin.admin_url(get_settings(backend="postgres")))
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", copies.COPY_PREFIX + "%"
            )
        finally:
            await conn.close()
        return [
            r[0] for r in rows if r[0].rsplit("_", 1)[-1].startswith("r") and len(r[0].rsplit("_", 1)[-1]) == 9
        ]

    from course.db import aio

    return aio.run(names())


def _leftovers(tmp: Path, backend: str, *, settle: float = 10, before: frozenset[str] = frozenset()) -> list[str]:
    """New copies in the temp folder or on the server; a run finishing in parallel gets `settle` seconds."""
    deadline = time.monotonic() + settle
    while True:
        on_server = [name for name in _tagged_databases(backend) if name not in before]
        left = sorted(p.name for p in tmp.iterdir() if p.name.startswith("course-")) + on_server
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.mark.notebooks(cost=6)  # the suite's longest test: scheduled first (tests/conftest.py)
@pytest.mark.slow
@pytest.mark.timeout(900)  # five kernel runs and a grading interrupted; minutes on a busy machine
def test_no_copy_outlives_check_grade_dead_kernels_or_ctrl_c(tmp_path: Path, backend: str) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp), "COURSE_BACKEND": backend}
    dying = _with(tmp_path / "dying" / "99_demo.ipynb", DYING)
    hoarding = _with(tmp_path / "hoarding" / "99_demo.ipynb", HOARD)
    # Hoards copies, then ignores the interrupt at its time limit: the runner stops the kernel and drops them.
    stubborn = _with(tmp_path / "stubborn" / "99_demo.ipynb", HOARD, STUBBORN)
    before = frozenset(_tagged_databases(backend))  # a crashed earlier run's are not this test's business

    # One `course grade` of three submissions: a hoarder whose kernel exits, a dying kernel and a stopped one.
    # (`course check` runs a notebook through the same runner: test_runner.py asserts no copy outlives its solved,
    # unsolved and dying runs.)
    subs = tmp_path / "subs"
    for learner, notebook in (("ann", hoarding), ("bob", dying), ("cy", stubborn)):
        (subs / learner).mkdir(parents=True)
        (subs / learner / "99_demo.ipynb").write_bytes(notebook.read_bytes())
    result = course(
        "grade", str(subs), "--out", str(tmp_path / "out"), "--timeout", "3", "--no-sandbox", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with (tmp_path / "out" / "grades.csv").open(newline="", encoding="utf-8") as f:
        messages = {(row["learner"], row["exercise"]): row["message"] for row in csv.DictReader(f)}
    # The runs went the way they were meant to: bob's kernel died, cy's was stopped.
    assert "the kernel died while running code cell 2" in messages["bob", "99.1"], messages
    stopped = "code cell 3 (`import time`) did not finish within 3 s and ignored the interrupt, so the kernel was"
    assert stopped in messages["cy", "99.1"], messages
    assert _leftovers(tmp, backend, before=before) == []

    # Ctrl-C (or SIGTERM) of `course grade` while two kernels hold copies (one thread per run: each cleans up after its own).
    sleeping = _with(tmp_path / "sleeping" / "99_demo.ipynb", HOARD, "import time\n\ntime.sleep(120)")
    class_ = tmp_path / "class"
    for learner in ("dee", "eve"):
        (class_ / learner).mkdir(parents=True)
        (class_ / learner / "99_demo.ipynb").write_bytes(sleeping.read_bytes())
    command = [
        "grade",
        str(class_),
        "--out",
        str(tmp_path / "out2"),
        "--jobs",
        "2",
        "--timeout",
        "150",
        "--no-sandbox",
    ]
    process = subprocess.Popen(
        [sys.executable, str(FIXTURES / "demo_cli.py"), *command],
        cwd=tmp_path,
        env={**os.environ, **KERNEL_ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A suite started in the background by a shell without job control inherits SIGINT ignored, and so would the
        # grader: Ctrl-C is what is tested here, so the grader gets the default disposition back.
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not _copies_held(tmp, backend, before) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _copies_held(tmp, backend, before), "the kernel never made its copy"
        # Ctrl-C on one backend, `kill` (SIGTERM, e.g. a closed terminal) on the other: both stop the run cleanly.
        process.send_signal(signal.SIGINT if backend == "sqlite" else signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "interrupted" in err, err
    assert _leftovers(tmp, backend, settle=0, before=before) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _copies_held(tmp: Path, backend: str, before: frozenset[str]) -> bool:
    # Both kernels have made their lesson copy and their two hoarded ones.
    if backend == "postgres":
        return len(_tagged_databases(backend)) >= 6 + len(before)
    return len(list(tmp.glob("course-check-*/copies/course-run-*/course.sqlite3"))) >= 6


def test_tagged_names_are_what_the_count_looks_for() -> None:
    tag = copies.new_run_tag()
    assert len(tag) == 9 and tag.startswith("r") and copies._TAG_RE.match(tag)


def test_the_runner_kills_its_own_kernels_and_no_other_process(tmp_path: Path) -> None:
    from course.grading.cleanup import Run

    run = Run(folder=tmp_path / "copies", tag=copies.new_run_tag(), pids=tmp_path / "kernel.pids")
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    # Kernels lead a session of their own, as jupyter_client starts them; the stranger has another run's tag.
    ours = subprocess.Popen(sleep, env={**os.environ, **run.env()}, start_new_session=True)
    stranger = subprocess.Popen(sleep, env={**os.environ, copies.RUN_TAG_ENV: copies.new_run_tag()})
    try:
        # Both started (exec'd), so their environments can be read: poll, never a fixed sleep.
        deadline = time.monotonic() + 30
        while not all(_has_tag(p) for p in (ours, stranger)) and time.monotonic() < deadline:
            time.sleep(0.02)
        run.pids.write_text(f"{ours.pid}\n{stranger.pid}\nnot-a-pid\n")
        started = time.monotonic()
        run.kill_kernels()
        ours.wait(timeout=10)  # (already reaped by kill_kernels, so its exit status is lost)
        assert time.monotonic() - started < 10 and not psutil.pid_exists(ours.pid)
        assert stranger.poll() is None
    finally:
        ours.kill()
        stranger.kill()
        ours.wait()
        stranger.wait()


def _has_tag(process: subprocess.Popen) -> bool:
    try:
        return copies.RUN_TAG_ENV in psutil.Process(process.pid).environ()
    except psutil.Error:
        return False
