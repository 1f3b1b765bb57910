"""Run the tools a user runs (uv, ruff, the generated project's own commands) as subprocesses."""

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import yaml
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
    "API_KEY",  # the integration checks' credential
    "ENVIRONMENT",  # development (the local database) or production: each test says which
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


def uv_sync(project: Path, python: Path | None = None, *, all_extras: bool = False) -> Path:
    """Install a generated project (runtime and dev groups) into a virtualenv; return its bin.

    Without an interpreter uv picks one from the project's `.python-version`, as an owner's
    `uv sync` does, into its own .venv; with another one, or with every optional extra, a
    virtualenv beside the project named after it. Bytecode is compiled at
    install, as a user's first run would leave it; this machine sets PYTHONDONTWRITEBYTECODE,
    which would otherwise recompile every import of every run.
    """
    venv = project / ".venv" if python is None else project.parent / f"venv-{python.name}"
    command = [UV, "sync", "--quiet", "--compile-bytecode", *python_option(python)]
    if all_extras:  # beside the project, never in it (its linters would read it)
        venv = project.parent / f"venv-{python.name if python else 'default'}-all-extras"
        command.append("--all-extras")
    run(*command, cwd=project, env=clean_environment(UV_PROJECT_ENVIRONMENT=str(venv)))
    return venv / "bin"


def python_option(python: Path | None) -> list[str]:
    """The option giving uv this interpreter; none leaves the choice to `.python-version`."""
    return [] if python is None else ["--python", str(python)]


def package_of(project: Path) -> str:
    """The package (and command) name a rendered project's answers file records."""
    answers = (project / ".copier-answers.yml").read_text()
    found = re.search(r"^package_name: (\w+)$", answers, re.MULTILINE)
    if found is None:
        raise AssertionError(f"{project} records no package_name")
    return found.group(1)


GITHUB_EXPRESSION = r"\$\{\{ [^}]* \}\}"
TEXT_SUFFIXES = {".py", ".toml", ".md", ".ini", ".yml", ".yaml", ".mako", ".example", ""}


def text_files(project: Path) -> list[Path]:
    """The project's own text files, without virtualenvs and caches."""
    return [
        path
        for path in project.rglob("*")
        if path.is_file()
        and path.suffix in TEXT_SUFFIXES
        and not {".venv", ".git", ".mypy_cache", ".ruff_cache"}.intersection(path.parts)
    ]


def template_debris(project: Path) -> list[str]:
    """What a render left behind: template syntax, stray blank lines, trailing whitespace.

    The answers are taken out of each file first, since a name may hold a brace of its own.
    """
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    given = {str(value) for value in answers.values()}
    values = sorted({*given, *(value.strip() for value in given)} - {""}, key=len, reverse=True)
    found = [
        f"{path}: a .jinja file"
        for path in project.rglob("*.jinja")
        if ".venv" not in path.relative_to(project).parts
    ]
    for path in text_files(project):
        text = path.read_text()
        if not text:  # an empty placeholder such as .gitkeep
            continue
        # GitHub's own expressions stay; taken out first, so an answer such as "$" that is
        # taken out of the text cannot leave a "{{" of theirs behind.
        bare = re.sub(GITHUB_EXPRESSION, "", text)
        for value in values:  # a mark in its place: "%d}" without the answer "d" is no "%}"
            bare = bare.replace(value, "\0")
        bare = re.sub(GITHUB_EXPRESSION, "", bare)
        if path.suffix != ".mako" and re.search(r"\{\{|\{%|%\}|\{#", bare):
            found.append(f"{path}: template syntax")
        if not text.endswith("\n") or text.endswith("\n\n"):
            found.append(f"{path}: no single final newline")
        if "\n\n\n\n" in text:
            found.append(f"{path}: a run of blank lines")
        if re.search(r"[ \t]+$", text, re.MULTILINE):
            found.append(f"{path}: trailing whitespace")
    return found
