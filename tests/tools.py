"""Run the tools a user runs (uv, ruff, the generated project's own commands) as subprocesses."""

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from uv import find_uv_bin

UV = find_uv_bin()

# What a user's shell would not have set, and what must not leak into a generated project.
# (nox points UV_PROJECT_ENVIRONMENT at its own virtualenv, which `uv sync` would then replace.)
_FOREIGN_VARIABLES = (
    "VIRTUAL_ENV",
    "UV_PROJECT_ENVIRONMENT",
    "UV_PYTHON",
    "DATABASE_URL",
    "DATABASE_READ_URL",
    "TEST_DATABASE_URL",
)


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: no virtualenv or database variables leak in."""
    environment = {k: v for k, v in os.environ.items() if k not in _FOREIGN_VARIABLES}
    environment["UV_PYTHON_DOWNLOADS"] = "never"  # never fetch a Python build
    return {**environment, **extra}


def run(
    *command: str | Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; unless `check` is off, fail the test with its output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=dict(env) if env is not None else clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def uv_sync(project: Path) -> Path:
    """Install a generated project (runtime and dev groups) into its own .venv; return its bin.

    Bytecode is compiled at install, as a user's first run would leave it; this machine sets
    PYTHONDONTWRITEBYTECODE, which would otherwise recompile every import of every run.
    """
    run(UV, "sync", "--quiet", "--compile-bytecode", "--python", sys.executable, cwd=project)
    return project / ".venv" / "bin"


def package_of(project: Path) -> str:
    """The package (and command) name a rendered project's answers file records."""
    answers = (project / ".copier-answers.yml").read_text()
    found = re.search(r"^package_name: (\w+)$", answers, re.MULTILINE)
    if found is None:
        raise AssertionError(f"{project} records no package_name")
    return found.group(1)
