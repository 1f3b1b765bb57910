"""The generated OpenAPI contract check bites, and names the one command that refreshes it.

A field added to a response schema fails the project's suite with the diff and the command;
running that very command (through a shell, as a user would paste it) makes it pass again.
"""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tools import UV, clean_environment, run, uv_sync

pytestmark = pytest.mark.generated

CONTRACT_TESTS = ("tests/api/test_openapi_contract.py", "-p", "no:randomly", "--no-cov", "-q")
REFRESH = "uv run demo_service openapi > openapi.json"


def contract(project: Path, bin_dir: Path) -> tuple[int, str]:
    """Run the generated contract tests; return the exit status and the output."""
    command = (bin_dir / "python", "-m", "pytest", *CONTRACT_TESTS)
    result = run(*command, cwd=project, env=clean_environment(), check=False)
    return result.returncode, result.stdout + result.stderr


def test_contract_fails_on_a_changed_field_and_passes_after_the_refresh(
    fresh_project: Callable[[str], Path],
) -> None:
    project = fresh_project("defaults")
    bin_dir = uv_sync(project)
    assert contract(project, bin_dir)[0] == 0  # as rendered, the snapshot is the code's

    schema = project / "src" / "demo_service" / "api" / "schemas" / "users.py"
    schema.write_text(
        schema.read_text().replace(
            "    id: int\n    email: str\n",
            "    id: int\n    email: str\n    nickname: str | None = None\n",
        )
    )
    status, output = contract(project, bin_dir)
    assert status != 0
    assert "The API's shape changed" in output
    assert REFRESH in output
    assert '+          "nickname": {' in output  # the diff shows the new field

    env = clean_environment(PATH=f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(REFRESH, shell=True, cwd=project, env=env, check=True)  # noqa: S602
    status, output = contract(project, bin_dir)
    assert status == 0, output
    assert '"nickname"' in (project / "openapi.json").read_text()
