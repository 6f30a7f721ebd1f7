"""Hostile chapter-1 submissions, written the way a motivated learner would, and the honest ones graded beside them.

Each attack is built so that it would *earn points* if it worked: the attacking function does the real work after
its attack (or only when the attack succeeded), so a grade of 0 or `tampered` shows the attack was stopped.
tests/hostile/postgres.py holds the attacks on a PostgreSQL server.

Attacks not stopped, and why (for the closing note):
- Frames. Python 3.11 audits how a frame is *obtained* (sys._getframe, tb_frame, cr_frame, gi_frame) but not
  `frame.f_back`: code that gets hold of any frame object through a path the audit does not see could walk up to
  the check's frames. Every path we know of is closed (frames never reach learner code: the traceback module may
  read them into summaries, never hand them on; signal handlers and trace functions are refused), but a path we do
  not know of would go unseen. The key is also only in the check process's parent and in the one child's frames.
- Behaving differently under the check: a function may notice it is being checked (the call stack's depth, the
  time, the environment) and answer the check's questions rather than solve the exercise. The checks judge
  behaviour on data that does not share the seed's uniformities, which makes this hard, not impossible.
- CPU, without a cpu controller: the cgroup gives a submission one core's worth of CPU time where the cpu
  controller can be had; elsewhere it may use every core for as long as its time limits allow, and on a crowded
  machine an honest check graded beside it near its own time limit could time out (--jobs 1 rules it out).
- Without a cgroup (no root, a read-only /sys/fs/cgroup, macOS has no sandbox at all) memory is capped per process
  only: 256 processes of 3 GiB each may still exhaust the machine (the run says so in one line).
- The kernel's own output: what the notebook prints is its business; the grader reads at most LOG_CAP bytes of it
  and never trusts it for a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from course.chapters.registry import chapter
from tests.nbsource import ROOT

SOLUTION = ROOT / "solutions" / "01_crud.ipynb"
STUB = ROOT / "exercises" / "01_crud.ipynb"
# A detached process a submission leaves behind carries this in its command line.
MARKER = "1234.5"
FUNCTIONS = ("create_user", "get_user_by_email", "list_users", "update_user", "soft_delete_user", "search_users")


# The exercises the attackers go for (each attack sits in one of their functions).
ATTACKED = ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")


@dataclass(frozen=True)
class Expected:
    """What an honest learner gets exactly, or what an attacker may get at most."""

    points: int
    statuses: frozenset[str] = frozenset()  # every exercise's status is one of these (empty: anything)


def _code_cells(path: Path, *, solved: set[str] | None = None) -> list[str]:
    """The definition cells of the solution, with the stub's version of every function not in solved."""
    solution = [c for c in _cells(SOLUTION) if not c.startswith("await check(")]
    stub = [c for c in _cells(STUB) if not c.startswith("await check(")]
    chosen = []
    for mine, theirs in zip(solution, stub, strict=True):
        # Every function an exercise asks for (the registry's names), so a new exercise is a stub unless solved.
        names = {n for spec in chapter(1).exercises for n in spec.names}
        name = next((f for f in sorted(names) if f"def {f}(" in mine), None)
        keep = solved is None or name is None or any(f"def {s}(" in mine for s in solved)
        chosen.append(mine if keep else theirs)
    return chosen


def _cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _write(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
            for source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")


def _wrapped(name: str, attack: str, *, kwargs: bool = False) -> str:
    """name redefined: the attack first, then the solution's own code (renamed), so an attack that works passes."""
    call = "session, **kw" if kwargs else "session, *args"
    signature = "session, **kw" if kwargs else "session, *args"
    body = "\n".join("    " + line for line in attack.strip().splitlines())
    return f"async def {name}({signature}):\n{body}\n    return await _real_{name}({call})\n"


def _renamed(cells: list[str]) -> list[str]:
    """The solution's functions under _real_ names too, for the wrappers to call."""
    return [
        c.replace("async def ", "async def _real_", 1) for c in cells if "async def " in c and "_real_" not in c
    ]


FRAME_THEFT = """
import sys, hmac, hashlib, json, os
frame = sys._getframe()
while frame is not None:
    key = frame.f_locals.get("key")
    config = frame.f_locals.get("config")
    if isinstance(key, bytes) and isinstance(config, dict):
        for exercise in ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6"):
            body = {"nonce": config["nonce"], "exercise": exercise, "status": "passed", "message": "passed"}
            text = json.dumps(body, sort_keys=True)
            mac = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            for fd in range(1, 30):
                try:
                    os.write(fd, f"COURSE-VERDICT {mac} {text}\\n".encode())
                except OSError:
                    pass
    frame = frame.f_back
"""
GC_SCAN = """
import gc
keys = [o for o in gc.get_objects() if isinstance(o, bytes) and len(o) == 32]
"""
PATCH_CHECKS = """
from course.checks import base
base.expect = lambda *args, **kwargs: None
import course.grading.check_process
"""
TRACEBACK_FRAMES = """
import traceback
try:
    # Every frame's local variables as text (the key among them), through the printing machinery.
    leaked = traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True)
except Exception:
    pass
try:
    raise RuntimeError("where am I")
except RuntimeError as exc:
    frame = exc.__traceback__.tb_frame.f_back
"""
# Honest: a learner who prints the error they caught (and logs it) before going on; the frames the traceback module
# reads for printing are not handed to them.
PRINTS_ITS_ERRORS = """
import logging, traceback
try:
    {}["no such key"]
except KeyError:
    traceback.print_exc()
    logging.getLogger("mine").exception("lookup failed")
    text = traceback.format_exc()
"""
# Children that each fit the per-process limit but together exceed the submission's memory cap.
MEMORY_FORKS = """
import os
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        hoard = b"x" * (700 * 2**20)
        os._exit(0)
    children.append(pid)
print([os.waitpid(pid, 0)[1] for pid in children])
"""
KILL_THE_CHECKER = """
import os, signal, subprocess
subprocess.run(["true"])
os.kill(os.getppid(), signal.SIGKILL)
"""
SIGNAL_FRAMES = """
import signal, time
stolen = []

def handler(signum, frame):
    while frame is not None:
        if isinstance(frame.f_locals.get("key"), bytes):
            stolen.append(frame.f_locals["key"])
        frame = frame.f_back

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.01)
time.sleep(0.05)
assert stolen
"""
BLIND_FORGERY = """
import os
for fd in range(1, 30):
    try:
        os.write(fd, b'COURSE-VERDICT 00 {"exercise": "1.1", "status": "passed", "message": "passed"}\\n')
    except OSError:
        pass
os._exit(0)
"""


def write_class(folder: Path, *, seed: Path, out: Path, solutions: Path) -> dict[str, Expected]:
    """Write one notebook per learner under folder/<learner>/01_crud.ipynb; return what each must get."""
    everything = {"passed"}
    sub = {name: folder / name / "01_crud.ipynb" for name in
           ("ann", "bob", "vandal", "forger", "snoop", "hog")}  # fmt: skip
    solved, stubs = _code_cells(SOLUTION), _code_cells(SOLUTION, solved=set())
    # The attackers attack exercises 1.1-1.6; the exercises after those stay unsolved, so any point they get
    # came from an attack that worked.
    attacked = {name for spec in chapter(1).exercises if spec.id in ATTACKED for name in spec.names}
    attack_base = _code_cells(SOLUTION, solved=attacked)
    _write(sub["ann"], solved)
    bob = _code_cells(SOLUTION, solved={"create_user", "get_user_by_email", "list_users"})
    # A cell's value kept as a definition though `lesson` came from an await: the functions after it still load.
    _write(
        sub["bob"],
        [
            *bob,
            *_renamed(bob),
            "WHERE = lesson.url\n\n\n" + _wrapped("create_user", PRINTS_ITS_ERRORS, kwargs=True),
        ],
    )
    # The seed (SQLite): rewritten, edited in place, deleted, renamed; the course package: a module edited, a
    # crafted .pyc dropped, a sitecustomize in the venv.
    _write(sub["vandal"], [*stubs, f"""
import os, sqlite3
seed = {str(seed)!r}
attempts = [
    lambda: sqlite3.connect(seed).execute("UPDATE users SET name = 'pwned'").connection.commit(),
    lambda: open(seed, "r+b").write(b"junk" * 100),
    lambda: os.remove(seed),
    lambda: os.rename(seed, seed + ".gone"),
]
for attempt in attempts:
    try:
        attempt()
    except Exception as exc:
        print(type(exc).__name__, exc)
""", """
import pathlib, sys, course
package = pathlib.Path(course.__file__).parent
targets = [
    (package / "checks" / "base.py", "a"),
    (package / "checks" / "__pycache__" / "base.cpython-311.pyc", "w"),
    (package / "grading" / "__pycache__" / "check_process.cpython-311.pyc", "w"),
    (pathlib.Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "sitecustomize.py", "w"),
]
# The run's cell log, which the grader reads afterwards, becomes a link to an endless device.
import os
log = os.environ.get("COURSE_CHECK_CELLS", "")
if log:
    os.remove(log) if os.path.exists(log) else None
    os.symlink("/dev/zero", log)
for path, mode in targets:
    try:
        with open(path, mode) as out:
            out.write("\\nimport os; os.environ['PWNED'] = '1'\\n")
    except OSError as exc:
        print(type(exc).__name__, exc)
"""])  # fmt: skip
    # Key theft, checker replacement, frames, killing the check process, SystemExit from a learner function.
    _write(sub["forger"], [*attack_base, *_renamed(attack_base),
        _wrapped("create_user", FRAME_THEFT, kwargs=True),
        _wrapped("get_user_by_email", GC_SCAN),
        _wrapped("list_users", PATCH_CHECKS, kwargs=True),
        _wrapped("update_user", TRACEBACK_FRAMES),
        _wrapped("soft_delete_user", KILL_THE_CHECKER),
        "async def search_users(session, term):\n    raise SystemExit(0)\n",
    ])  # fmt: skip
    # Reading other submissions, solutions/, the grader's output and environment; a blind forgery.
    _write(sub["snoop"], [*attack_base, *_renamed(attack_base),
        f"OTHER = {str(sub['ann'])!r}\nSOLUTIONS = {str(solutions)!r}\nOUT = {str(out)!r}\n",
        _wrapped("create_user", BLIND_FORGERY, kwargs=True),
        _wrapped("get_user_by_email", "open(OTHER).read()"),
        _wrapped("list_users", "open(SOLUTIONS).read()", kwargs=True),
        _wrapped("update_user", "import os\nassert os.environ['INSTRUCTOR_TOKEN']"),
        _wrapped("soft_delete_user", SIGNAL_FRAMES),
        _wrapped("search_users", "open('/proc/1/environ').read()"),
        "import os, shutil\ntry:\n    shutil.copy(OTHER, 'stolen.ipynb')\n    os.listdir(OUT)\nexcept OSError as exc:\n    print(exc)\n",
    ])  # fmt: skip
    # Memory bomb, fork bomb, huge output, detached processes, a cell that awaits forever, killing every process
    # in sight: the definitions
    # (all correct) keep their points, since the checks load them and not what the cells did.
    _write(sub["hog"], [*solved, MEMORY_FORKS, """
try:
    hoard = bytearray(8 * 2**30)
except MemoryError:
    print("no memory")
""", f"""
import subprocess
subprocess.Popen(["sleep", "{MARKER}"], start_new_session=True)
subprocess.Popen(["sh", "-c", "sleep {MARKER} &"], start_new_session=True)
""", """
import os, time
children = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        children += 1
except OSError as exc:
    print("forks stopped after", children, exc)
""", "print('x' * 30_000_000)", "from IPython.display import display\ndisplay({'text/plain': 'y' * 30_000_000}, raw=True)",
        "import asyncio\n\nawait asyncio.Event().wait()",
        # Last: kill every process it can reach (other learners' kernels, the grader, if it could see them).
        "import os, signal\n\nos.kill(-1, signal.SIGKILL)"])  # fmt: skip
    return {
        "ann": Expected(chapter(1).max_points, frozenset(everything)),
        "bob": Expected(7),
        "vandal": Expected(0),
        "forger": Expected(0, frozenset({"tampered", "failed"})),
        "snoop": Expected(0, frozenset({"tampered", "failed"})),
        "hog": Expected(chapter(1).max_points, frozenset(everything)),
    }
