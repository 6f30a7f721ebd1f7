"""A learner's session in a real browser: JupyterLab started by `make lab`, driven by headless Chromium.

The system's Chromium (Debian's `chromium`, listed in .ci/apt-packages) is driven through the `playwright` package
with `executable_path`; no browser is ever downloaded. The learner's exercise notebook, with the solutions typed in,
runs to green (every check cell shows its ✅ line), and a lesson shows its plot as an image. Screenshots are kept
under test-artifacts/browser/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from course.chapters.registry import chapter
from course.grading.build import MARKER_RE
from tests.nbsource import ROOT
from tests.needs import missing

# Where the README tells learners to work; move it here (one place) if that changes.
LEARNER_NOTEBOOK = Path("exercises/01_crud.ipynb")
# A lesson that draws a plot (kept short: the whole notebook runs in the browser).
LESSON_WITH_PLOT = Path("notebooks/04_pagination.ipynb")
# Under the lab's root folder (the repository), so JupyterLab can open what the test writes there.
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# As root Chromium needs --no-sandbox; the rest keep it from reaching for the network (refused here, and noisy).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A notebook run in the page: far above a lesson's < 60 s, far below a hang.
RUN_TIMEOUT_S = 240


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    missing("no Chromium here (Debian: apt-get install chromium)")


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(lab: Lab, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    # `make lab` seeds first (seconds), then JupyterLab starts: poll its API until it answers.
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`make lab` exited with {process.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer within {deadline_s:.0f} s:\n{lab.log.read_text()[-3000:]}")


def _stop(lab: Lab, process: subprocess.Popen[bytes]) -> None:
    # Kernels run in sessions of their own: shut them down through the server, then stop `make lab` itself.
    try:
        for kernel in lab.api("/api/kernels"):
            lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab started by the README's `make lab`, on a free port with a token, no browser of its own."""
    if shutil.which("make") is None:
        missing("no `make` here")
    port, token = _free_port(), os.urandom(16).hex()
    home = tmp_path_factory.mktemp("jupyter")
    # A learner's own Jupyter settings and workspaces stay out of the test, and the test leaves none behind.
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    # JupyterLab's first-visit question about news would cover part of every screenshot.
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0"
    # The environment running the tests is the installed one: --old-file keeps make from reinstalling it.
    command = [
        "make",
        "--no-print-directory",
        "--old-file=.venv/.installed",
        "lab",
        f"BIN={Path(sys.executable).parent}",
        f"LAB_ARGS={args} --IdentityProvider.token={token}",
    ]
    log = home / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, log=log)
    try:
        _wait_until_up(lab, process, deadline_s=120)
        yield lab
    finally:
        _stop(lab, process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"browser test artefacts (screenshots, the notebooks it ran): {ARTIFACTS}")
    return ARTIFACTS


def _solution_source(source: str) -> str:
    return "\n".join(line for line in source.split("\n") if not MARKER_RE.match(line))


def learner_with_answers(learner: Path, solutions: Path) -> nbformat.NotebookNode:
    """The learner's notebook with each stubbed cell typed in from the solution (the rest is the learner's copy)."""
    notebook = nbformat.read(learner, as_version=4)
    source = nbformat.read(solutions, as_version=4)
    assert len(notebook.cells) == len(source.cells), f"{learner} is out of date with {solutions}"
    for cell, answer in zip(notebook.cells, source.cells, strict=True):
        if "raise NotImplementedError(" in cell.source:
            cell.source = _solution_source(answer.source)
    return notebook


def test_the_learner_copy_gets_every_answer_and_nothing_else() -> None:
    """What the browser runs is the learner's notebook with exactly the stubbed lines replaced by the answers."""
    learner = nbformat.read(ROOT / LEARNER_NOTEBOOK, as_version=4)
    filled = learner_with_answers(ROOT / LEARNER_NOTEBOOK, ROOT / "solutions" / LEARNER_NOTEBOOK.name)
    changed = [i for i, (a, b) in enumerate(zip(learner.cells, filled.cells, strict=True)) if a.source != b.source]
    names = {name for exercise in chapter(LEARNER_NOTEBOOK.stem).exercises for name in exercise.names}
    assert len(changed) >= len(chapter(LEARNER_NOTEBOOK.stem).exercises)
    for i in changed:
        assert "raise NotImplementedError(" in learner.cells[i].source
        assert "NotImplementedError" not in filled.cells[i].source and "SOLUTION" not in filled.cells[i].source
    defined = " ".join(filled.cells[i].source for i in changed)
    assert all(f"def {name}(" in defined for name in names), "every function the checks receive is answered"


def _open(page: Any, lab: Lab, path: Path) -> None:
    """Open the notebook in JupyterLab and wait until all its cells are shown and its kernel is idle."""
    cells = len(nbformat.read(path, as_version=4).cells)
    page.goto(f"{lab.url}/lab/tree/{path.relative_to(ROOT).as_posix()}?reset&token={lab.token}")
    page.wait_for_function(
        f"document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length >= {cells}", timeout=90_000
    )
    # The status bar names the kernel once it has started ("Python 3 (ipykernel) | Idle"); before, "No Kernel".
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
            .some(item => / \\| Idle$/.test(item.textContent) && !item.textContent.startsWith('No Kernel'))""",
        timeout=90_000,
    )


def _run_all(page: Any) -> None:
    """Run every cell from the Run menu, as a learner would, and wait until the kernel has finished."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    # Run All queues every code cell at once ([*]); the run has ended when none is queued and one has a number
    # (an error ends it early: the cells after it lose their [*]).
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent.trim());
            return prompts.some(p => /^\\[\\d+\\]:$/.test(p)) && !prompts.includes('[*]:');
        }""",
        timeout=RUN_TIMEOUT_S * 1000,
        polling=500,
    )


def _tracebacks(page: Any) -> list[str]:
    # JupyterLab shows an exception as text on the stderr output type.
    shown = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_inner_texts()
    return [text for text in shown if "Traceback" in text]


def _learner_notebook_to_green(page: Any, lab: Lab, artifacts: Path) -> None:
    notebook = learner_with_answers(ROOT / LEARNER_NOTEBOOK, ROOT / "solutions" / LEARNER_NOTEBOOK.name)
    path = artifacts / LEARNER_NOTEBOOK.name
    nbformat.write(notebook, path)
    _open(page, lab, path)
    _run_all(page)
    tracebacks = _tracebacks(page)
    assert not tracebacks, f"a cell failed in the browser:\n{tracebacks[0][-3000:]}"
    for exercise in chapter(LEARNER_NOTEBOOK.stem).exercises:
        line = page.get_by_text(f"✅ Exercise {exercise.id} passed", exact=True)
        line.scroll_into_view_if_needed()
        assert line.is_visible(), f"no ✅ line for exercise {exercise.id} in the page"
    assert page.locator(".jp-OutputArea-output", has_text="❌").count() == 0, "a check cell shows ❌"


def _lesson_plot_shows(page: Any, lab: Lab, artifacts: Path) -> None:
    path = artifacts / LESSON_WITH_PLOT.name
    shutil.copyfile(ROOT / LESSON_WITH_PLOT, path)
    _open(page, lab, path)
    _run_all(page)
    tracebacks = _tracebacks(page)
    assert not tracebacks, f"a cell failed in the browser:\n{tracebacks[0][-3000:]}"
    plot = page.locator(".jp-OutputArea-output img").first
    # Centred, so the kept screenshot shows the whole plot.
    plot.evaluate("img => img.scrollIntoView({block: 'center'})")
    assert plot.is_visible(), f"{LESSON_WITH_PLOT} showed no plot"
    box = plot.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 150, f"the plot is a speck: {box}"
    # Drawn, not a broken image: the browser decoded the PNG.
    assert plot.evaluate("img => img.complete && img.naturalWidth > 200")


@pytest.mark.notebooks
@pytest.mark.slow
def test_learner_session_in_the_browser(browser: Any, lab: Lab, artifacts: Path) -> None:
    """The learner's notebook runs to green (a ✅ line per exercise), then a lesson shows its plot as an image.

    One test, so one JupyterLab and one Chromium serve both (xdist could otherwise start each twice).
    """
    for name, step in ((LEARNER_NOTEBOOK, _learner_notebook_to_green), (LESSON_WITH_PLOT, _lesson_plot_shows)):
        page, start = browser.new_page(viewport={"width": 1280, "height": 900}), time.perf_counter()
        screenshot = artifacts / f"{name.stem}.png"
        try:
            step(page, lab, artifacts)
        finally:
            page.screenshot(path=str(screenshot))
            print(f"{name} in the browser: {time.perf_counter() - start:.1f} s; screenshot {screenshot}")
            page.close()
