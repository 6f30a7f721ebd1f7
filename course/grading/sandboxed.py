"""Grade one notebook in sandboxes (course/grading/sandbox.py): the learner's kernel runs it for its own output, then
a check process (course/grading/check_process.py) in a second, fresh sandbox checks every exercise of its chapter on
the learner's definitions alone. Only this module, outside both sandboxes, reads the verdicts and writes results.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from course.chapters.registry import Chapter
from course.db import copies
from course.errors import CourseError
from course.grading import cgroups, check_process, cleanup, definitions, runner, sandbox, sandbox_db
from course.grading.nbval_hooks import CELLS_ENV, OUTPUT_CAP, clip
from course.grading.notebook_format import load_notebook
from course.grading.verdicts import Cell, ExerciseResult, cell_problems, kernel_stopped
from course.settings import Settings, get_settings, project_root

# What the grader reads of the verdict channel at most: verdicts are short, a flood is cut off.
CHANNEL_CAP = 1_000_000
# ... and of the kernel's cell log, a file the sandbox can write (or replace by a link to anything).
LOG_CAP = 5_000_000
STARTUP_ALLOWANCE = 60.0
STATUSES = ("passed", "failed", "error", "skipped", "tampered")


class SandboxBroken(RuntimeError):
    """The sandbox or the check process could not run: an infrastructure failure, never the learner's."""


def run_sandboxed(
    path: Path,
    *,
    chapter: Chapter,
    timeout: float,
    settings: Settings | None = None,
    limits: sandbox.Limits | None = None,
    learner_url: str | None = None,
) -> tuple[list[ExerciseResult], list[str], str | None]:
    """(one result per exercise of chapter, the cells that failed, why the kernel run broke or None).

    learner_url: a workshop learner's own PostgreSQL login and database, which their sandbox then works in.
    """
    settings = settings or get_settings()
    limits = limits or sandbox.Limits()
    nb = load_notebook(path)
    source = definitions.extract(nb)
    work = Path(tempfile.mkdtemp(prefix=f"{copies.RUNNER_PREFIX}{os.getpid()}-"))
    door: sandbox_db.SandboxDatabase | None = None
    # One cap on the memory and processes of all the submission's processes, where a cgroup can be made.
    group = None
    if cgroups.unavailable() is None:
        with contextlib.suppress(OSError):  # the rlimits still hold; the run said so when there was no cgroup
            group = cgroups.new_group(limits.total_memory_bytes, limits.processes)
    try:
        work.chmod(0o755)
        try:
            # On PostgreSQL: the submission's own relay and copy broker (its copies go when it is graded).
            door = sandbox_db.open_for(settings, learner_url)
        except (OSError, CourseError) as exc:
            raise SandboxBroken(f"the sandbox could not reach the database: {exc}") from None
        where = sandbox_db.Reach(door, group)
        cells, kernel_error = _run_kernel(nb, work / "kernel", settings, limits, timeout, where)
        if group is not None and group.oom_kills():
            kernel_error = (
                f"the notebook went over the submission's memory cap ({limits.total_memory_bytes / 2**30:g} GiB): "
                f"{group.oom_kills()} of its processes were killed"
            )
        verdicts = _run_checks(source, chapter, work / "checks", settings, limits, where)
    finally:
        if group is not None:
            group.close()
        if door is not None:
            door.close()
        shutil.rmtree(work, ignore_errors=True)
    results = []
    for spec in chapter.exercises:
        status, message = verdicts.get(spec.id, ("error", "the check process gave no verdict"))
        passed = status == "passed"
        max_points = 0 if status == "skipped" else spec.points
        points = spec.points if passed else 0
        results.append(ExerciseResult(spec.id, spec.title, passed, points, max_points, message, status))
    return results, cell_problems(cells, timeout, results), kernel_error


def _run_kernel(
    nb: dict[str, Any],
    work: Path,
    settings: Settings,
    limits: sandbox.Limits,
    timeout: float,
    where: sandbox_db.Reach,
) -> tuple[list[Cell], str | None]:
    """Run the learner's notebook as it is (no grader cells) under nbval in a sandbox; its cells' outcomes."""
    work.mkdir()
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    for cell in code:
        cell["outputs"], cell["execution_count"] = [], None
    cells = [
        Cell(i, "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for i, c in enumerate(code)
    ]
    copy = work / "notebook.ipynb"
    copy.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    (work / "pytest.ini").write_text("[pytest]\n")
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-course-check.py").write_text(OUTPUT_CAP + cleanup.KERNEL_STARTUP, encoding="utf-8")
    env = {
        CELLS_ENV: str(work / "cells.jsonl"),
        "IPYTHONDIR": str(work / "ipython"),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        copies.RUN_TAG_ENV: copies.new_run_tag(),
        **where.env,
    }
    argv = [
        sys.executable, "-m", "pytest", "-p", "nbval.plugin", "-p", "course.grading.nbval_hooks", "-p",
        "no:cacheprovider", "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}",
        "-c", str(work / "pytest.ini"), "--rootdir", str(work), "--confcutdir", str(work),
        "-q", "--color=no", "-o", "addopts=", str(copy),
    ]  # fmt: skip
    overall = STARTUP_ALLOWANCE + timeout * max(1, len(cells))
    error = None
    with (work / "pytest.log").open("wb") as sink:
        try:
            process = sandbox.popen(
                argv, work=work, settings=settings, limits=limits, env=env, ro_binds=where.binds, group=where.group,
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        except OSError as exc:
            raise SandboxBroken(f"the sandbox could not start: {exc}") from None
        try:
            with _tracked(process):
                process.wait(timeout=overall)
        except subprocess.TimeoutExpired:
            error = f"the notebook did not finish within {overall:.0f} s and was stopped"
        finally:
            _kill(process)
    for outcome in _jsonl(_read_own_file(work / "cells.jsonl", LOG_CAP)):
        if isinstance(outcome.get("cell"), int) and 0 <= outcome["cell"] < len(cells) and "ok" in outcome:
            cells[outcome["cell"]].outcome = outcome
    return cells, error or kernel_stopped(cells, timeout)


def _run_checks(
    source: list[tuple[str, str]],
    chapter: Chapter,
    work: Path,
    settings: Settings,
    limits: sandbox.Limits,
    where: sandbox_db.Reach,
) -> dict[str, tuple[str, str]]:
    """(status, message) per exercise id, from the check process's signed verdict lines."""
    work.mkdir()
    key, nonce = secrets.token_bytes(32), secrets.token_hex(16)
    registry = chapter.checks().registry
    config = {
        "nonce": nonce,
        "module": chapter.checks_module,
        "exercises": [{"id": spec.id, "names": list(spec.names)} for spec in chapter.exercises],
        "definitions": source,
        "forbidden": [str(project_root() / "solutions")],
    }
    timeouts = [
        registry.exercises[s.id].timeout if s.id in registry.exercises else 30.0 for s in chapter.exercises
    ]
    overall = STARTUP_ALLOWANCE + sum(t + check_process.CHILD_ALLOWANCE for t in timeouts)
    argv = [sys.executable, "-I", "-m", "course.grading.check_process"]
    with (work / "stderr.log").open("wb") as errors:
        try:
            process = sandbox.popen(
                argv, work=work, settings=settings, limits=limits, env=where.env, ro_binds=where.binds, group=where.group,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            )  # fmt: skip
        except OSError as exc:
            raise SandboxBroken(f"the sandbox could not start: {exc}") from None
        try:
            assert process.stdin is not None and process.stdout is not None
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(json.dumps(config).encode() + b"\n" + key.hex().encode() + b"\n")
                process.stdin.close()
            with _tracked(process):
                output = _read_capped(process.stdout, time.monotonic() + overall)
        finally:
            _kill(process)
    found: dict[str, tuple[str, str]] = {}
    forged: set[str] = set()
    ends: dict[str, dict[str, Any]] = {}
    for line in output.decode("utf-8", errors="replace").splitlines():
        body = check_process.verify(key, nonce, line)
        if body is None:
            continue
        exercise = str(body.get("exercise"))
        if "status" in body and body["status"] in STATUSES:
            if exercise in found and body["status"] != "tampered":
                # A check child writes one verdict: a second one for the same exercise was forged with the key.
                found[exercise] = ("tampered", "more than one signed verdict for this exercise: one was forged")
                forged.add(exercise)
            elif body["status"] == "tampered" or exercise not in found:
                found[exercise] = (body["status"], str(body.get("message", "")))
        elif "ended" in body:
            ends[exercise] = body
    for spec, seconds in zip(chapter.exercises, timeouts, strict=True):
        if spec.id not in found and spec.id in ends:
            found[spec.id] = check_process.explain_end(ends[spec.id], seconds)
    if any(status == "tampered" for status, _ in found.values()):
        # A check that tampered may have taken the check process down with it: what did not run is not checked.
        for spec in chapter.exercises:
            found.setdefault(spec.id, ("tampered", "not checked: an earlier check of this submission tampered"))
    if not found:
        raise SandboxBroken(f"the check process gave no verdict: {_last_line(work / 'stderr.log')}")
    return found


def _read_capped(stream: Any, deadline: float) -> bytes:
    chunks, size = [], 0
    fd = stream.fileno()
    while size < CHANNEL_CAP:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _last_line(log: Path) -> str:
    lines = [
        line for line in _read_own_file(log, 4000, tail=True).decode(errors="replace").splitlines() if line.strip()
    ]
    return clip(lines[-1], 300) if lines else "no output"


def _read_own_file(path: Path, cap: int, *, tail: bool = False) -> bytes:
    """At most cap bytes of a file the sandbox could write to: never through a link it put there, never a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return b""
        if tail:
            handle.seek(max(0, info.st_size - cap))
        return handle.read(cap)


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    rows = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short
        if isinstance(row, dict):
            rows.append(row)
    return rows


@contextlib.contextmanager
def _tracked(process: subprocess.Popen[bytes]) -> Iterator[None]:
    # Known to runner.stop_all, so Ctrl-C of `course grade` stops the sandboxes too.
    with runner._LOCK:
        runner._RUNNING.add(process)
    try:
        if runner._STOPPING.is_set():
            raise KeyboardInterrupt
        yield
    finally:
        with runner._LOCK:
            runner._RUNNING.discard(process)


def _kill(process: subprocess.Popen[bytes]) -> None:
    # bwrap leads its own session; with it goes the sandbox's PID namespace and every process in it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
