"""The check process of a sandboxed grading run: one fresh child per exercise loads the learner's definitions only,
runs the course's check on them and sends a signed verdict on a channel the grader alone reads.

Run as `python -I -m course.grading.check_process` inside the sandbox. stdin brings one JSON line (the exercises,
the learner's definitions, a nonce) and then the run's key, which the notebook kernel never saw; stdout is the
verdict channel, moved to a private descriptor before any learner code loads, while fd 1 goes to stderr. The parent
imports the course's checks and installs the audit hooks (course/grading/audit.py), then forks one child per
exercise: the child closes stdin, arms the hooks, loads the definitions, checks, signs and writes its verdict. The
parent never runs learner code; it reports each child's end (exit status, time-out), signed too, so a child that
dies or hangs is explained. The grader trusts a line only with this run's nonce and a valid HMAC.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import hmac
import json
import os
import signal
import sys
import time
import types
from typing import Any

VERDICT_PREFIX = "COURSE-VERDICT "
# On top of the exercise's own time limit: interpreter start, the copy of the seed, the engine's start-up.
CHILD_ALLOWANCE = 15.0
# How long loading the learner's definitions (imports included) may take.
LOAD_SECONDS = 20


def sign(key: bytes, body: dict[str, Any]) -> str:
    """A verdict line: the body as JSON with an HMAC-SHA256 over it."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return f"{VERDICT_PREFIX}{hmac.new(key, text.encode(), hashlib.sha256).hexdigest()} {text}\n"


def verify(key: bytes, nonce: str, line: str) -> dict[str, Any] | None:
    """The body of a verdict line when its HMAC is right and it carries this run's nonce, else None."""
    if not line.startswith(VERDICT_PREFIX):
        return None
    mac, _, text = line[len(VERDICT_PREFIX) :].rstrip("\n").partition(" ")
    good = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, good):
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return None
    return body if isinstance(body, dict) and body.get("nonce") == nonce else None


def _snapshot() -> dict[tuple[str, str], int]:
    """Identity of every function, class and module the course's modules (and their classes) and builtins hold."""
    seen: dict[tuple[str, str], int] = {}
    for name, module in list(sys.modules.items()):
        if not (name == "course" or name.startswith("course.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            seen[(name, attr)] = id(value)
            if isinstance(value, type) and value.__module__ == name:
                for member, inner in list(vars(value).items()):
                    seen[(f"{name}.{attr}", member)] = id(inner)
    for attr, value in vars(builtins).items():
        seen[("builtins", attr)] = id(value)
    return seen


def _changed(before: dict[tuple[str, str], int]) -> list[str]:
    after = _snapshot()
    owners = {owner for owner, _ in before}
    changed = []
    for key, ident in after.items():
        old = before.get(key)
        if old == ident or key[0] not in owners:
            continue  # unchanged, or a module first imported during the check
        value = _lookup(key)
        if old is None and (value is None or type(value).__name__ == "module"):
            continue  # a submodule imported during the check
        if old is None or callable(value) or isinstance(value, type):
            changed.append(f"replaced {key[0]}.{key[1]}")
    changed += [f"removed {k[0]}.{k[1]}" for k in before if k not in after]
    return changed[:10]


def _lookup(key: tuple[str, str]) -> Any:
    owner, attr = key
    if owner == "builtins":
        return vars(builtins).get(attr)
    module_name, _, cls = owner.rpartition(".") if owner not in sys.modules else (owner, "", "")
    holder: Any = sys.modules.get(module_name)
    if cls:
        holder = vars(holder).get(cls) if holder is not None else None
    return vars(holder).get(attr) if holder is not None else None


def _child(config: dict[str, Any], exercise: dict[str, Any], key: bytes, channel: int, watch: Any) -> None:
    import asyncio

    from course.checks.base import ExerciseFailed
    from course.settings import get_settings

    registry = config["registry"]
    spec = registry.chapter.exercise(exercise["id"])
    status, message = "failed", ""
    before = _snapshot()
    # From here on learner code may run: the hooks watch, and the key stays in this frame only.
    watch.arm()
    # A real module: SQLAlchemy resolves a model's annotations (Mapped[int]) in its class's module.
    module = types.ModuleType("__learner__")
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    try:
        # Definitions load at once; a class body that loops for ever is stopped, not waited for.
        signal.signal(signal.SIGALRM, _too_slow)
        signal.alarm(LOAD_SECONDS)
        try:
            for filename, source in config["definitions"]:
                _load(filename, source, namespace)
        finally:
            signal.alarm(0)
        missing = next((n for n in exercise["names"] if not callable(namespace.get(n))), None)
        if get_settings().backend not in spec.backends:
            status, message = "skipped", "this exercise runs on the other database"
        elif missing is not None:
            message = f"not found: define `{missing}` at the top level of the notebook, as a function"
        else:
            functions = tuple(namespace[n] for n in exercise["names"])
            asyncio.run(registry.check(exercise["id"], *functions))
            status, message = "passed", "passed"
    except ExerciseFailed as exc:
        message = exc.reason
    except _LoadTimeout:
        message = f"loading your definitions took over {LOAD_SECONDS} s: a class body or default value that loops?"
    except BaseException as exc:  # noqa: BLE001 - the check could not run (the learner's errors are ExerciseFailed)
        status = "error"
        message = f"the check could not run: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
    changed = _changed(before)
    seen = watch.seen + changed
    if seen:
        status, message = "tampered", "; ".join(seen)
    body = {"nonce": config["nonce"], "exercise": exercise["id"], "status": status, "message": message}
    os.write(channel, sign(key, body).encode())


def _load(filename: str, source: str, namespace: dict[str, Any]) -> None:
    """Run one cell's definitions statement by statement; one that fails is skipped, as its cell failed.

    `url = lesson.url` is kept as a definition, but `lesson` came from an `await` the check never runs: the
    functions defined after it in the same cell must still load (a function that needed it fails on its own).
    """
    for node in ast.parse(source, filename).body:
        try:
            exec(compile(ast.Module([node], []), filename, "exec"), namespace)  # noqa: S102 - sandboxed learner code
        except Exception:  # noqa: BLE001, S112 - what the watch saw is in watch.seen; the rest is the cell's failure
            continue


class _LoadTimeout(BaseException):
    pass


def _too_slow(_signum: int, _frame: object) -> None:
    raise _LoadTimeout


def _wait(pid: int, deadline: float) -> tuple[str, int | None]:
    while True:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            return ("signal", os.WTERMSIG(code)) if os.WIFSIGNALED(code) else ("exit", os.WEXITSTATUS(code))
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", None
        time.sleep(0.05)


def explain_end(end: dict[str, Any], timeout: float) -> tuple[str, str]:
    """Why a check child ended without a verdict; the learner's code ran in it, so it is the learner's failure."""
    if end.get("ended") == "timeout":
        return (
            "failed",
            f"did not finish within {timeout:.0f} s and was stopped: a loop or an await that never ends?",
        )
    if end.get("ended") == "signal":
        try:
            name = signal.Signals(int(end["value"])).name
        except (TypeError, ValueError):
            name = f"signal {end.get('value')}"
        return "failed", f"the check process was killed by {name} (out of memory or CPU time?)"
    return (
        "failed",
        f"the check process ended (exit code {end.get('value')}) before it gave a verdict: os._exit()?",
    )


def main() -> None:
    import importlib

    from course.grading.audit import Watch

    config = json.loads(sys.stdin.buffer.readline())
    key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    # The verdict channel gets a private descriptor; whatever learner code prints goes to stderr instead.
    channel = os.dup(1)
    os.dup2(2, 1)
    os.environ["COURSE_CHECK_REPORT"] = os.devnull  # base.py then keeps each check's outcome in memory
    registry = importlib.import_module(config["module"]).registry
    config["registry"] = registry
    watch = Watch(forbidden_paths=config.get("forbidden", ()), channel_fd=channel)
    watch.learner_files |= {name for name, _ in config["definitions"]}
    watch.install()
    for exercise in config["exercises"]:
        timeout = registry.exercises[exercise["id"]].timeout if exercise["id"] in registry.exercises else 30.0
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(0)  # the key's pipe: the child never reads it again, and learner code cannot
                _child(config, exercise, key, channel, watch)
            except BaseException:  # noqa: BLE001 - the parent reports the exit
                code = 3
            os._exit(code)
        how, value = _wait(pid, started + timeout + CHILD_ALLOWANCE)
        body = {
            "nonce": config["nonce"],
            "exercise": exercise["id"],
            "ended": how,
            "value": value,
            "seconds": round(time.monotonic() - started, 2),
        }
        os.write(channel, sign(key, body).encode())


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
