"""What every check shares: a fresh database to run on, a time limit, learner-friendly failures and a report."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from course import db
from course.checks.learner import describe_learner_error, is_stub_error
from course.seed import fresh
from course.settings import Settings, get_settings
from course.tools.instrument import count_queries

if TYPE_CHECKING:
    # Only the type: the check framework sits below the chapters and never imports them.
    from course.chapters.registry import Chapter

# `course check` sets this: every check appends one JSON line with its outcome.
REPORT_ENV = "COURSE_CHECK_REPORT"
# ... and this: a file holding the key that signs those lines (see course/grading/runner.py's docstring).
REPORT_KEY_ENV = "COURSE_CHECK_KEY_FILE"
DEFAULT_TIMEOUT = 30.0


class ExerciseFailed(AssertionError):
    """A check's verdict on the learner's code: the message says what was wrong and hints at why."""

    def __init__(self, exercise: str, message: str) -> None:
        self.exercise = exercise
        self.reason = message
        super().__init__(f"❌ Exercise {exercise}: {message}")


class _Failure(Exception):
    """Raised inside a checker by `fail`; turned into ExerciseFailed with the exercise id attached."""


def fail(message: str) -> NoReturn:
    """Stop the check with a message for the learner."""
    raise _Failure(message)


def expect(condition: object, message: str) -> None:
    """fail(message) unless condition holds."""
    if not condition:
        fail(message)


class LearnerCodeError(Exception):
    """The learner's function raised: reported with its type, message and line, never as a crash."""

    def __init__(self, original: BaseException) -> None:
        self.original = original


@dataclass
class CheckDB:
    """The database a check runs on: a fresh copy of the seed, thrown away afterwards."""

    settings: Settings
    url: str
    engine: AsyncEngine
    Session: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def count_queries(self):  # noqa: ANN201 - the instrument's own context manager
        return count_queries(self.engine)


async def call_learner(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function (sync or async); its exceptions become a clear failure, not a crash."""
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
    except (_Failure, asyncio.CancelledError, _Timeout):
        raise
    except NotImplementedError as exc:
        if not is_stub_error(exc):
            # Raised by something else (a library feature the database lacks...): an ordinary error.
            raise LearnerCodeError(exc) from exc
        fail(f"not solved yet ({exc}): replace the `raise NotImplementedError` line with your code")
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 - any learner error is a verdict
        raise LearnerCodeError(exc) from exc


class _Timeout(Exception):
    pass


_RECHECK_SECONDS = 0.25
_LOOP_FILES = (f"{os.sep}asyncio{os.sep}", f"{os.sep}selectors.py")


def _in_event_loop(frame: FrameType) -> bool:
    return any(part in frame.f_code.co_filename for part in _LOOP_FILES)


@contextmanager
def _cpu_guard(seconds: float) -> Iterator[None]:
    """Interrupt code that never yields to the event loop (a `while True:`), which asyncio timeouts cannot."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(_signum: int, frame: FrameType | None) -> None:
        # An event loop that is waiting (select) or switching tasks is not stuck, and an exception raised inside it
        # would break the loop itself: look again shortly; asyncio's own timeout is on its way.
        if frame is not None and _in_event_loop(frame):
            signal.setitimer(signal.ITIMER_REAL, _RECHECK_SECONDS)
            return
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


Checker = Callable[..., Awaitable[None]]
# True while `grade` runs a check: its report lines are marked as the grader's, the verdict that counts.
_BY_GRADER: ContextVar[bool] = ContextVar("course_by_grader", default=False)
# The verdict of the check running now (a kernel runs one at a time), and of the notebook's last check of each
# exercise with the functions it was given: the grader need not run a check twice on the same functions.
_LAST_REPORT: dict[str, Any] = {}
NOTEBOOK_VERDICTS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}


def _fingerprint(solution: tuple[Any, ...]) -> tuple[Any, ...]:
    # The objects themselves (kept alive, so no id is reused), and for functions their code and defaults: a
    # function whose code was swapped after its check is not the function that was checked.
    return tuple((fn, getattr(fn, "__code__", None), getattr(fn, "__defaults__", None)) for fn in solution)


def same_functions(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """True when two fingerprints are of the very same objects, code and defaults."""
    return len(a) == len(b) and all(
        x is y for pair_a, pair_b in zip(a, b, strict=True) for x, y in zip(pair_a, pair_b, strict=True)
    )


def _take_report_key() -> bytes | None:
    """The key `course check` left for this kernel, taken once: file and variable go, so cells cannot read them."""
    path = os.environ.pop(REPORT_KEY_ENV, None)
    if not path:
        return None
    try:
        key = Path(path).read_bytes()
        Path(path).unlink()
    except OSError:
        return None
    return key


# importlib.reload() keeps the key this module already took.
_REPORT_KEY: bytes | None = globals().get("_REPORT_KEY") or _take_report_key()


def report_signature(key: bytes, line: dict[str, Any]) -> str:
    """The HMAC a verdict line carries, over its other fields; course/grading/runner.py recomputes it to trust the line."""
    body = json.dumps({k: v for k, v in line.items() if k != "signature"}, sort_keys=True, ensure_ascii=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


@dataclass
class Exercise:
    id: str
    points: int
    checker: Checker
    timeout: float


@dataclass
class Registry:
    """One chapter's checkers by exercise id (`check = registry.check` in the notebook); points and titles come
    from the chapter registry (course/chapters/registry.py), never from here."""

    chapter: Chapter
    exercises: dict[str, Exercise] = field(default_factory=dict)

    def exercise(self, exercise_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> Callable[[Checker], Checker]:
        spec = self.chapter.exercise(exercise_id)

        def register(checker: Checker) -> Checker:
            self.exercises[exercise_id] = Exercise(exercise_id, spec.points, checker, timeout)
            return checker

        return register

    async def check(self, exercise_id: str, *solution: Any, settings: Settings | None = None) -> None:
        """Run the check for exercise_id on the learner's function(s); print ✅ or raise ExerciseFailed."""
        _LAST_REPORT.clear()
        try:
            await self._check(exercise_id, *solution, settings=settings)
        finally:
            if settings is None and _LAST_REPORT and not _BY_GRADER.get():
                # The grader reuses this verdict if it would check the very same functions (course/checks/grader.py).
                NOTEBOOK_VERDICTS[exercise_id] = (_fingerprint(solution), dict(_LAST_REPORT))

    async def _check(self, exercise_id: str, *solution: Any, settings: Settings | None = None) -> None:
        if exercise_id not in self.exercises:
            known = ", ".join(self.exercises)
            raise ExerciseFailed(exercise_id, f"no such exercise in chapter {self.chapter.stem} (known: {known})")
        exercise = self.exercises[exercise_id]
        settings = settings or get_settings()
        backends = self.chapter.exercise(exercise_id).backends
        if settings.backend not in backends:
            # Not the learner's fault: this check needs a database the current settings do not use.
            wanted = " or ".join("PostgreSQL" if b == "postgres" else "SQLite" for b in backends)
            message = (
                f"skipped: this exercise runs on {wanted} only; set COURSE_BACKEND="
                f"{backends[0]} and restart the kernel to check it"
            )
            _report(exercise, passed=False, message=message, status="skipped")
            print(f"⏭ Exercise {exercise_id} {message}")
            return
        try:
            await _run(exercise, solution, settings)
        except _Failure as exc:
            _report(exercise, passed=False, message=str(exc))
            raise ExerciseFailed(exercise_id, str(exc)) from None
        except LearnerCodeError as exc:
            message = describe_learner_error(exc.original)
            _report(exercise, passed=False, message=message)
            raise ExerciseFailed(exercise_id, message) from exc.original
        except (_Timeout, TimeoutError):
            message = (
                f"did not finish within {exercise.timeout:.0f} s: look for a loop that never ends, "
                "or a query that fetches far more rows than it needs"
            )
            _report(exercise, passed=False, message=message)
            raise ExerciseFailed(exercise_id, message) from None
        _report(exercise, passed=True, message="passed")
        print(f"✅ Exercise {exercise_id} passed")


async def _run(exercise: Exercise, solution: tuple[Any, ...], settings: Settings) -> None:
    limit = db.TimeLimit(exercise.timeout)
    async with fresh.fresh_copy(settings) as copy:
        # The limit reaches into the database: a runaway statement is stopped, not merely abandoned.
        engine = db.limited_engine(url=copy.url, limit=limit)
        checkdb = CheckDB(settings=settings, url=copy.url, engine=engine, Session=db.make_sessionmaker(engine))
        try:
            with _cpu_guard(exercise.timeout + 2):
                limit.start()
                try:
                    await asyncio.wait_for(exercise.checker(*solution, checkdb), exercise.timeout)
                except Exception as exc:
                    # A statement stopped at the deadline surfaces as an error or a wrong answer: it is the limit.
                    if limit.expired or isinstance(exc, TimeoutError):
                        raise _Timeout from None
                    raise
        finally:
            await engine.dispose()


def _report(exercise: Exercise, *, passed: bool, message: str, status: str | None = None) -> None:
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    line = {
        "exercise": exercise.id,
        "passed": passed,
        "points": exercise.points if passed else 0,
        "max_points": exercise.points,
        "message": message,
    }
    if status is not None:
        line["status"] = status
    _LAST_REPORT.clear()
    _LAST_REPORT.update(line)
    if _BY_GRADER.get():
        line["by"] = "grader"
    if _REPORT_KEY is not None:
        line["signature"] = report_signature(_REPORT_KEY, line)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
