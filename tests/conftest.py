"""Fixtures shared by the template's tests: a clean snapshot of the template, rendered projects.

Renders come from a temporary git repository holding the working tree as one commit, so the
tests see uncommitted changes yet copier never meets a dirty repository (which would record a
commit id that later breaks `copier update`). Each answer set is rendered and installed once per
session, and the generated projects share uv's package cache.
"""

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from copier import run_copy

from tests.answers import ANSWER_SETS, EVERY_DEPENDENCY
from tests.figures import FIGURES, MEASURED
from tests.local_postgres import load
from tests.tools import uv_sync

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_FOLDERS = {
    ".git",
    ".nox",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "site",
    ".hypothesis",
}


def git(cwd: Path, *args: str) -> str:
    """Run git quietly in `cwd`, as an anonymous committer; return its output."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Keel tests",
        "GIT_AUTHOR_EMAIL": "tests@keel.invalid",
        "GIT_COMMITTER_NAME": "Keel tests",
        "GIT_COMMITTER_EMAIL": "tests@keel.invalid",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def snapshot_template(destination: Path) -> Path:
    """Copy the working tree (without caches and virtualenvs) into a new one-commit repository."""
    shutil.copytree(
        ROOT, destination, ignore=lambda _folder, names: SKIPPED_FOLDERS.intersection(names)
    )
    git(destination, "init", "--quiet", "--initial-branch", "main")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", "Template snapshot")
    return destination


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean git snapshot of the template as it is on disk now."""
    return snapshot_template(tmp_path_factory.mktemp("template") / "keel")


def render(
    template: Path, destination: Path, answers: Mapping[str, object], vcs_ref: str = "HEAD"
) -> Path:
    """Render the template with these answers, the way a user's `copier copy --defaults` does."""
    run_copy(
        str(template),
        destination,
        data=dict(answers),
        defaults=True,
        unsafe=False,  # the default path must not need --trust
        vcs_ref=vcs_ref,
        quiet=True,
    )
    return destination


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL server shared by the tests of a session."""
    with load().LocalPostgres() as server:
        yield server


@pytest.fixture(params=ANSWER_SETS, ids=str)
def project(request: pytest.FixtureRequest, rendered: Callable[[str], Path]) -> Path:
    """A rendered project for each answer set."""
    return rendered(request.param)


@pytest.fixture
def fresh_project(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """Render an answer set into a new folder of its own, for a test that edits it."""

    def make(name: str) -> Path:
        destination = tmp_path_factory.mktemp(f"fresh-{name}") / "project"
        return render(template, destination, ANSWER_SETS[name])

    return make


@pytest.fixture(scope="session")
def rendered(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render an answer set by name, once per session."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            destination = tmp_path_factory.mktemp(f"rendered-{name}") / "project"
            cache[name] = render(template, destination, ANSWER_SETS[name])
        return cache[name]

    return get


@pytest.fixture(scope="session")
def typing_tools(rendered: Callable[[str], Path]) -> Path:
    """The bin folder of a virtualenv holding every dependency any answer set installs."""
    return uv_sync(rendered(EVERY_DEPENDENCY))


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every render: the dependencies are checked once per Python."""
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture(autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    """Hand the test's figures to its report, which reaches the process that prints them."""
    yield
    request.node.user_properties.extend(("figure", figure) for figure in MEASURED)
    MEASURED.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the figures a test's last report carries."""
    if report.when == "teardown":
        FIGURES.extend(str(value) for name, value in report.user_properties if name == "figure")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the tests measured."""
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.line(line)
