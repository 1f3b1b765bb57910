"""The generated migration gate bites, and says how to fix what it caught.

A model changed without a migration fails the suite with a message naming the command to run;
once the revision is generated, the suite passes again.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.tools import clean_environment, run, uv_sync

pytestmark = pytest.mark.generated

GATE_TESTS = ("tests/db/test_migrations.py", "-p", "no:randomly", "--no-cov", "-q")
ADVICE = 'uv run demo_service revision -m "what changed"'


def gate(project: Path, bin_dir: Path, server_url: str) -> tuple[int, str]:
    """Run the generated migration tests; return the exit status and the output."""
    env = clean_environment(TEST_DATABASE_URL=server_url)
    command = (bin_dir / "python", "-m", "pytest", *GATE_TESTS)
    result = run(*command, cwd=project, env=env, check=False)
    return result.returncode, result.stdout + result.stderr


def autogenerate(project: Path, bin_dir: Path, url: str, message: str) -> Path:
    """Generate a revision the way the gate's advice says; return the new file."""
    env = clean_environment(DATABASE_URL=url)
    before = set((project / "src" / "demo_service" / "migrations" / "versions").glob("*.py"))
    run(bin_dir / "demo_service", "revision", "-m", message, cwd=project, env=env)
    after = set((project / "src" / "demo_service" / "migrations" / "versions").glob("*.py"))
    (revision,) = after - before
    return revision


def test_gate_fails_on_model_drift_and_passes_after_autogenerate(
    fresh_project: Callable[[str], Path], postgres: Any
) -> None:
    project = fresh_project("defaults")
    bin_dir = uv_sync(project)
    model = project / "src" / "demo_service" / "db" / "models" / "user.py"

    # A new column, without a migration.
    model.write_text(
        model.read_text().replace(
            "    full_name: Mapped[str | None] = mapped_column(String(200))\n",
            "    full_name: Mapped[str | None] = mapped_column(String(200))\n"
            "    nickname: Mapped[str | None] = mapped_column(String(50))\n",
        )
    )
    status, output = gate(project, bin_dir, postgres.url)
    assert status != 0
    assert "The models and the migrations disagree" in output
    assert ADVICE in output
    assert "nickname" in output

    revision = autogenerate(project, bin_dir, postgres.create_database("drift1"), "add nickname")
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{4}-[0-9a-f]{12}_add_nickname\.py", revision.name)
    assert 'sa.Column("nickname", sa.String(length=50), nullable=True)' in revision.read_text()
    run(bin_dir / "ruff", "check", "--no-cache", revision, cwd=project)
    run(bin_dir / "ruff", "format", "--no-cache", "--check", revision, cwd=project)
    assert gate(project, bin_dir, postgres.url)[0] == 0

    # A changed type, without a migration.
    model.write_text(model.read_text().replace("String(50)", "String(80)"))
    status, output = gate(project, bin_dir, postgres.url)
    assert status != 0
    assert ADVICE in output

    revision = autogenerate(project, bin_dir, postgres.create_database("drift2"), "widen nickname")
    assert "length=80" in revision.read_text()
    assert gate(project, bin_dir, postgres.url)[0] == 0
