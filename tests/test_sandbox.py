"""`course grade` in sandboxes: one class of honest learners and hostile submissions (tests/hostile), graded once.

Each attack family of issue 13 is one learner; the class is graded in one run (one test, so one xdist worker), and
each helper below judges a different promise about that run: exact grades for the honest, 0 or `tampered` for
attackers, what each attacker reached for, the seed and the course code unchanged, nothing left behind, a resume.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from course.chapters.registry import chapter
from course.db import aio, copies
from course.errors import CourseError
from course.grading import classroom, definitions, sandbox
from course.grading.classroom import GradeRow, Submission, _Gradebook
from course.seed import ensure_seed
from course.seed.load import seed_url
from course.seed.status import content_checksum
from course.settings import get_settings
from tests.hostile import MARKER, Expected, write_class
from tests.nbsource import ROOT

REQUIRE = os.environ.get("COURSE_REQUIRE_SYSTEM_PACKAGES", "") not in ("", "0", "false")


def _need_sandbox() -> None:
    reason = sandbox.unavailable()
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"COURSE_REQUIRE_SYSTEM_PACKAGES=1 but no sandbox: {reason}")
        pytest.skip(reason)


def _course_tree() -> str:
    """A digest of every file under course/ (pycache included) and of the venv's site-packages listing."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "course").rglob("*")):
        digest.update(str(path).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    site = Path(os.__file__).parent / "site-packages"
    venv_site = Path(ROOT / ".venv" / "lib").glob("python3*/site-packages")
    for folder in [site, *venv_site]:
        if folder.is_dir():
            digest.update("\n".join(sorted(os.listdir(folder))).encode())
    return digest.hexdigest()


def _leftovers() -> list[str]:
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "uids"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        uids = process.info["uids"]
        if MARKER in cmdline or (uids is not None and sandbox.made_here(uids.real)):
            found.append(f"{process.info['pid']}: {cmdline[:80]}")
    return found


@pytest.fixture
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _need_sandbox()
    root = tmp_path_factory.mktemp("class")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_SCALE", "tiny")
        # An instructor's secret in the grader's environment: no submission may see it.
        mp.setenv("INSTRUCTOR_TOKEN", "hunter2")
        settings = get_settings()
        ensure_seed(settings, progress=False)
        url = seed_url(settings)
        seed_file = settings.data_dir / f"course_{settings.scale}.sqlite3"
        before = {
            "checksum": aio.run(content_checksum(url)),
            "file": seed_file.read_bytes(),
            "tree": _course_tree(),
            "data": sorted(os.listdir(settings.data_dir)),
        }
        out = root / "out"
        expected = write_class(root / "subs", seed=seed_file, out=out, solutions=ROOT / "solutions")
        started = time.perf_counter()
        # Cell time limits only shorten the kernel's run (the hang): verdicts come from the check process.
        # A memory cap for the whole submission small enough for the hog's forks to cross it (on a shared machine).
        limits = sandbox.Limits(total_memory_bytes=1536 * 2**20)
        report = classroom.grade([root / "subs"], out=out, jobs=2, timeout=3, limits=limits)
        seconds = time.perf_counter() - started
        after = {
            "checksum": aio.run(content_checksum(url)),
            "file": seed_file.read_bytes(),
            "tree": _course_tree(),
            "data": sorted(os.listdir(settings.data_dir)),
        }
        yield {
            "report": report,
            "expected": expected,
            "before": before,
            "after": after,
            "out": out,
            "subs": root / "subs",
            "seconds": seconds,
            "data_dir": settings.data_dir,
        }


def _by_learner(rows: list[GradeRow]) -> dict[str, list[GradeRow]]:
    table: dict[str, list[GradeRow]] = {}
    for row in rows:
        table.setdefault(row.learner, []).append(row)
    return table


def _honest_learners_keep_exact_grades_and_attackers_get_nothing(graded: dict[str, Any]) -> None:
    table = _by_learner(graded["report"].rows)
    expected: dict[str, Expected] = graded["expected"]
    assert set(table) == set(expected)
    for learner, want in expected.items():
        rows = table[learner]
        detail = [(r.exercise, r.status, r.message[:120]) for r in rows]
        assert len(rows) == len(chapter(1).exercises), (learner, detail)
        assert sum(r.points for r in rows) == want.points, (learner, detail)
        assert all(r.max_points == r.points or r.points == 0 for r in rows)
        if want.statuses:
            assert {r.status for r in rows} <= want.statuses, (learner, detail)
    bob = {r.exercise: r.status for r in table["bob"]}
    assert bob == {
        "1.1": "passed",
        "1.2": "passed",
        "1.3": "passed",
        "1.4": "failed",
        "1.5": "failed",
        "1.6": "failed",
        **{spec.id: "failed" for spec in chapter(1).exercises[6:]},
    }
    # The CSV on disk says the same, and holds the new statuses.
    with (graded["out"] / "grades.csv").open(newline="", encoding="utf-8") as handle:
        on_disk = list(csv.DictReader(handle))
    assert len(on_disk) == len(graded["report"].rows)
    assert {"tampered"} <= {r["status"] for r in on_disk}


def _what_the_grader_reached_for_is_named(graded: dict[str, Any]) -> None:
    forger = {r.exercise: r for r in _by_learner(graded["report"].rows)["forger"]}
    assert forger["1.1"].status == "tampered" and "frame" in forger["1.1"].message
    assert forger["1.2"].status == "tampered" and "garbage collector" in forger["1.2"].message
    assert forger["1.3"].status == "tampered" and "imported course.grading" in forger["1.3"].message
    assert "replaced course.checks.base.expect" in forger["1.3"].message
    assert forger["1.4"].status == "tampered" and "tb_frame" in forger["1.4"].message
    assert "sys._getframe" in forger["1.4"].message  # walk_stack with capture_locals
    assert forger["1.5"].status == "tampered" and "process" in forger["1.5"].message
    # SystemExit raised by a learner function is a verdict, not a dead check.
    assert forger["1.6"].status == "failed" and "your code raised SystemExit" in forger["1.6"].message
    assert "code cell" in forger["1.6"].message  # the learner's own cell and line
    snoop = {r.exercise: r for r in _by_learner(graded["report"].rows)["snoop"]}
    assert snoop["1.1"].status == "failed" and "before it gave a verdict" in snoop["1.1"].message
    assert "FileNotFoundError" in snoop["1.2"].message  # another learner's notebook is not there
    assert snoop["1.3"].status in ("failed", "tampered")  # solutions/ is not there either
    assert "KeyError" in snoop["1.4"].message  # the instructor's environment is not passed on
    assert snoop["1.5"].status == "tampered" and "signal handler" in snoop["1.5"].message
    assert snoop["1.6"].status == "tampered" and "/proc/1/environ" in snoop["1.6"].message


def _seed_and_course_code_are_unchanged(graded: dict[str, Any]) -> None:
    assert graded["after"]["checksum"] == graded["before"]["checksum"]
    assert graded["after"]["file"] == graded["before"]["file"]
    assert graded["after"]["tree"] == graded["before"]["tree"]
    assert not (graded["subs"] / "snoop" / "stolen.ipynb").exists()


def _nothing_is_left_behind(graded: dict[str, Any]) -> None:
    assert _leftovers() == []
    mine = list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"{copies.RUNNER_PREFIX}{os.getpid()}-*"))
    assert mine == []
    # No copy of the seed was made next to it: the copies lived in the sandboxes' own temp folders.
    assert graded["after"]["data"] == graded["before"]["data"]


def _a_rerun_resumes_and_grades_nothing_twice(graded: dict[str, Any]) -> None:
    started = time.perf_counter()
    again = classroom.grade([graded["subs"]], out=graded["out"], jobs=2, timeout=3)
    assert time.perf_counter() - started < 15
    assert sorted(map(repr, again.rows)) == sorted(map(repr, graded["report"].rows))


@pytest.mark.notebooks(cost=5)  # six submissions, two at a time
def test_a_hostile_class_is_graded_fairly(graded: dict[str, Any]) -> None:
    """One grading run of the class (the expensive part), then each promise about it in turn."""
    _honest_learners_keep_exact_grades_and_attackers_get_nothing(graded)
    _what_the_grader_reached_for_is_named(graded)
    _seed_and_course_code_are_unchanged(graded)
    _nothing_is_left_behind(graded)
    _a_rerun_resumes_and_grades_nothing_twice(graded)


def test_grades_are_written_as_each_submission_finishes_and_a_changed_one_is_regraded(tmp_path: Path) -> None:
    notebook = tmp_path / "ann" / "01_crud.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    sub = Submission(notebook, "ann", None)
    book = _Gradebook(tmp_path / "out") if (tmp_path / "out").mkdir() is None else None
    assert book is not None and not book.done(sub)
    book.add(sub, [GradeRow("ann", "01_crud", "1.1", 2, 2, "passed", "passed", str(notebook))])
    # On disk at once: a grader killed now leaves this row.
    assert "ann,01_crud,1.1,2,2,passed" in (tmp_path / "out" / "grades.csv").read_text()
    assert _Gradebook(tmp_path / "out").done(sub)
    notebook.write_text('{"changed": 1}')
    reopened = _Gradebook(tmp_path / "out")
    assert not reopened.done(sub) and reopened.rows() == []
    # An infrastructure error is not remembered as done: the next run tries again.
    reopened.add(sub, [GradeRow("ann", "01_crud", "1.1", 0, 2, "error", "sandbox broke", str(notebook))])
    assert not _Gradebook(tmp_path / "out").done(sub)


def test_no_sandbox_means_a_one_line_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox, "unavailable", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(CourseError, match=r"not installed; .* add --no-sandbox"):
        classroom.grade([tmp_path], out=tmp_path / "out")


def test_definitions_keep_what_is_defined_and_drop_what_cells_do() -> None:
    cells = [
        "import os\nfrom math import pi\nLIMIT = 10\nNAMES: tuple = ('a', 'b')\nprint('hi')\nx = os.getcwd()\n"
        "rows = await fetch()\nos.environ['A'] = '1'",
        "%time 1\n!ls\nasync def f(s):\n    return await s.get(1)\nawait f(None)",
        "class A:\n    pass\nwhile True:\n    pass",
        "def broken(:\n    pass",
        "def f():\n    return 2",
    ]
    nb = {
        "cells": [{"cell_type": "code", "source": c} for c in cells] + [{"cell_type": "markdown", "source": "x"}]
    }
    chunks = definitions.extract(nb)
    assert [name for name, _ in chunks] == ["<code cell 1>", "<code cell 2>", "<code cell 3>", "<code cell 5>"]
    namespace: dict[str, Any] = {}
    for name, chunk in chunks:
        exec(compile(chunk, name, "exec"), namespace)  # noqa: S102 - the test's own source
    # Line numbers are the cell's own: the learner's error points at the line they wrote.
    assert chunks[1][1].splitlines()[3] == "    return await s.get(1)"
    source = "\n".join(chunk for _, chunk in chunks)
    assert namespace["LIMIT"] == 10 and namespace["NAMES"] == ("a", "b") and namespace["pi"] > 3
    assert namespace["f"]() == 2 and "A" in namespace
    assert namespace["x"] == os.getcwd()  # module-level values the functions use are kept...
    assert "rows" not in namespace and "environ[" not in source  # ...but not what a cell does
    assert "print" not in source and "while" not in source and "broken" not in source


def test_a_sandbox_that_cannot_start_is_an_error_tried_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from course.chapters.registry import chapter
    from course.grading import sandboxed

    starts = []

    def broken(*args: object, **kwargs: object) -> None:
        starts.append(1)
        raise OSError("bwrap: setting up uid map: Permission denied")

    monkeypatch.setattr(sandbox, "popen", broken)
    notebook = tmp_path / "ann" / "01_crud.ipynb"
    notebook.parent.mkdir()
    notebook.write_text((ROOT / "exercises" / "01_crud.ipynb").read_text())
    rows = classroom.grade_submission(Submission(notebook, "ann", chapter(1)), timeout=5, sandboxed=True)
    assert len(starts) == 2  # tried once more before it stands
    assert {r.status for r in rows} == {"error"} and len(rows) == len(chapter(1).exercises)
    assert rows[0].message.startswith("the sandbox could not start: bwrap: setting up uid map")
    assert sandboxed.STATUSES == classroom.STATUSES


def test_grade_and_check_take_the_sandbox_flags() -> None:
    import argparse

    from course.cli import exercises

    parser = argparse.ArgumentParser()
    exercises.add_parser(parser.add_subparsers())
    assert parser.parse_args(["grade", "subs", "--out", "o", "--no-sandbox"]).no_sandbox is True
    assert parser.parse_args(["grade", "subs", "--out", "o"]).no_sandbox is False
    assert parser.parse_args(["check", "nb.ipynb", "--sandbox"]).sandbox is True


# Four children of 120 MiB each: every one fits the per-process limit, together they do not fit the cap.
FORKS = """
import os
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        hoard = b"x" * (120 * 2**20)
        os._exit(0)
    children.append(pid)
print(" ".join(str(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])) for pid in children), flush=True)
"""


def test_a_submissions_processes_share_one_memory_cap(tmp_path: Path) -> None:
    import subprocess
    import sys

    from course.grading import cgroups

    _need_sandbox()
    if reason := cgroups.unavailable():
        pytest.skip(reason)
    group = cgroups.new_group(256 * 2**20, 64)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)
    try:
        process = sandbox.popen(
            [sys.executable, "-I", "-c", FORKS], work=work, settings=get_settings(), limits=sandbox.Limits(),
            group=group, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = process.communicate(timeout=120)
        codes = [int(c) for c in out.split()]
        # The OOM killer ended children of this group (exit code -9), and said so in the group's events.
        assert len(codes) == 4 and -9 in codes, (out, err[-500:])
        assert group.oom_kills() >= 1
        # One core's worth of CPU time where the cpu controller is there (cpu.max on v2, a CFS quota on v1).
        quota = [
            f for folder in group.folders for f in (folder / "cpu.max", folder / "cpu.cfs_quota_us") if f.exists()
        ]
        assert all(f.read_text().split()[0] == str(cgroups.CPUS * cgroups.PERIOD) for f in quota)
    finally:
        group.close()
    assert not any(folder.exists() for folder in group.folders)


def test_without_a_cgroup_the_run_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from course.grading import cgroups

    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    cgroups.unavailable.cache_clear()
    try:
        note = cgroups.unavailable()
    finally:
        cgroups.unavailable.cache_clear()
    assert note is not None and "\n" not in note and "memory is capped per process only" in note


# Run in a fresh interpreter (an audit hook cannot be removed): which of these learner snippets the watch calls
# tampering. Honest error printing must pass; every way of getting a frame object (or frames' locals) must not.
AUDIT_PROBE = """
import json, sys
from course.grading.audit import Watch

SNIPPETS = {
    "print_exc": "import traceback\\ntry:\\n    {}['x']\\nexcept KeyError:\\n    traceback.print_exc()",
    "format_exc": "import traceback\\ntry:\\n    1 / 0\\nexcept ZeroDivisionError:\\n    text = traceback.format_exc()",
    "logging": "import logging\\ntry:\\n    1 / 0\\nexcept ZeroDivisionError:\\n    logging.getLogger('me').exception('oops')",
    "print_stack": "import traceback\\ntraceback.print_stack()",
    "tb_frame": "try:\\n    1 / 0\\nexcept ZeroDivisionError as exc:\\n    f = exc.__traceback__.tb_frame",
    "walk_tb": "import traceback\\ntry:\\n    1 / 0\\nexcept ZeroDivisionError as exc:\\n    f = list(traceback.walk_tb(exc.__traceback__))",
    "walk_stack": "import traceback\\nf = list(traceback.walk_stack(None))",
    "locals": "import traceback\\ns = traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True)",
    "inspect_stack": "import inspect\\nf = inspect.stack()",
    "getframe": "import sys\\nf = sys._getframe()",
}
watch = Watch()
watch.install()
watch.arm()
seen = {}
for name, code in SNIPPETS.items():
    watch.seen.clear()
    try:
        exec(compile(code, "<learner-notebook>", "exec"), {})
    except Exception:
        pass
    seen[name] = list(watch.seen)
print(json.dumps(seen))
"""


def test_printing_a_traceback_is_honest_and_taking_frames_is_not() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", AUDIT_PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    honest = ("print_exc", "format_exc", "logging", "print_stack")
    assert {name: seen[name] for name in honest} == {name: [] for name in honest}, done.stderr[-2000:]
    for name in set(seen) - set(honest):
        assert seen[name], f"{name} took frames unseen"
