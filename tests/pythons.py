"""The Python interpreters this machine has, by version, for running generated suites on each.

Found on PATH (`python3.12`) or among pyenv's installed versions, never downloaded.
"""

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.module_names import default_python, offered_pythons


def _runs(interpreter: Path, version: str) -> bool:
    """Whether the file is a working interpreter of that version (a pyenv shim may not be)."""
    check = f"import sys; sys.exit(sys.version.startswith('{version}.') is False)"
    try:
        return subprocess.run([interpreter, "-c", check], capture_output=True).returncode == 0
    except OSError:
        return False


def _candidates(version: str) -> list[Path]:
    found = shutil.which(f"python{version}")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    return [
        *([Path(found)] if found else []),
        *sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True),
    ]


@functools.cache
def interpreters() -> dict[str, Path]:
    """One working interpreter for each offered Python version the machine has."""
    found = {}
    for version in offered_pythons():
        working = [path for path in _candidates(version) if _runs(path, version)]
        if working:
            found[version] = working[0]
    return found


def allowed_by(answers: Mapping[str, object]) -> dict[str, Path]:
    """The interpreters a project rendered with these answers supports, oldest first."""
    lowest = str(answers.get("python_version", default_python()))
    versions = offered_pythons()
    return {
        v: path for v, path in interpreters().items() if versions.index(v) >= versions.index(lowest)
    }
