"""The generated squawk check bites, and the expand/contract page's steps pass it for real.

An unsafe revision fails the generated suite naming the revision and squawk's rule, and passes
once the revision accepts the rule with a reason. The how-to page is run from its own code
blocks, step by step, in a rendered project: each step's revision passes squawk and the
migration gate, and migrates a database holding a row written before the change.
"""

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.tools import clean_environment, run, uv_sync

pytestmark = pytest.mark.generated

PAGE = ROOT / "docs" / "zero-downtime-migrations.md"
SAFETY_TESTS = ("tests/db/test_migration_safety.py", "-p", "no:randomly", "--no-cov", "-q")
MODEL_FILE = "# src/<package>/db/models/user.py, in class User\n"

UNSAFE = """
def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(length=50), nullable=False))
    op.create_index("ix_users_nickname", "users", ["nickname"])


def downgrade() -> None:
    op.drop_index("ix_users_nickname", table_name="users")
    op.drop_column("users", "nickname")
"""
ACCEPTED = """
squawk_accepted: dict[str, str] = {
    "adding-required-field": "users is empty until launch",
    "require-concurrent-index-creation": "users is empty until launch",
}
"""


@dataclass
class Step:
    """One step of the page: its title, model line, revision snippet and commands."""

    title: str
    model: str | None
    revision: str
    commands: list[str]


def page_steps() -> list[Step]:
    """The page's steps, read from its `## Step` sections and their code blocks."""
    sections = re.split(r"^## (.+)$", PAGE.read_text(), flags=re.MULTILINE)[1:]
    steps = []
    for title, body in zip(sections[::2], sections[1::2], strict=True):
        if not title.startswith("Step "):
            continue
        blocks = re.findall(r"^```(\w+)\n(.*?)^```$", body, flags=re.MULTILINE | re.DOTALL)
        python = [code for language, code in blocks if language == "python"]
        models = [code.removeprefix(MODEL_FILE) for code in python if code.startswith(MODEL_FILE)]
        (revision,) = [code for code in python if not code.startswith(MODEL_FILE)]
        (commands,) = [code.splitlines() for language, code in blocks if language == "sh"]
        steps.append(Step(title, models[0] if models else None, revision, commands))
    return steps


def versions(project: Path) -> Path:
    """The folder of the project's revisions."""
    return project / "src" / "demo_service" / "migrations" / "versions"


def new_revision(project: Path, bin_dir: Path, message: str) -> Path:
    """Create an empty revision the way a reader does; return its file."""
    before = set(versions(project).glob("*.py"))
    run(bin_dir / "alembic", "revision", "-m", message, cwd=project)
    (created,) = set(versions(project).glob("*.py")) - before
    return created


def write_revision(revision: Path, snippet: str, bin_dir: Path) -> None:
    """Put the snippet's imports with the file's and its code in place of the generated one."""
    lines = snippet.splitlines(keepends=True)
    imports = "".join(line for line in lines if line.startswith(("import ", "from ")))
    code = "".join(line for line in lines if not line.startswith(("import ", "from ")))
    text = revision.read_text()
    head = text[: text.index("\ndef upgrade()")].replace(
        "from collections.abc import Sequence\n", f"from collections.abc import Sequence\n{imports}"
    )
    revision.write_text(f"{head}\n{code.strip()}\n")
    project = revision.parents[4]
    run(bin_dir / "ruff", "check", "--no-cache", "--fix", "--quiet", revision, cwd=project)
    run(bin_dir / "ruff", "format", "--no-cache", "--quiet", revision, cwd=project)
    run(bin_dir / "ruff", "check", "--no-cache", revision, cwd=project)


def set_model(project: Path, line: str) -> None:
    """Add the page's column line to the User model, or replace the one a step added before."""
    model = project / "src" / "demo_service" / "db" / "models" / "user.py"
    text = model.read_text()
    earlier = re.search(r"^    nickname: .*\n", text, flags=re.MULTILINE)
    if earlier:
        text = text.replace(earlier.group(0), line)
    else:
        anchor = "    full_name: Mapped[str | None] = mapped_column(String(200))\n"
        text = text.replace(anchor, anchor + line)
    model.write_text(text)


def test_squawk_fails_an_unsafe_revision_until_it_accepts_the_rules(
    fresh_project: Callable[[str], Path],
) -> None:
    project = fresh_project("defaults")
    bin_dir = uv_sync(project)
    safety = (bin_dir / "python", "-m", "pytest", *SAFETY_TESTS)

    run(*safety, cwd=project)  # the shipped revisions pass

    revision = new_revision(project, bin_dir, "add users nickname")
    write_revision(revision, f"import sqlalchemy as sa\nfrom alembic import op\n{UNSAFE}", bin_dir)
    result = run(*safety, cwd=project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    named = f"src/demo_service/migrations/versions/{revision.name}"
    assert f"{named}: adding-required-field: Adding a new column that is `NOT NULL`" in output
    assert f"{named}: require-concurrent-index-creation: " in output
    assert "fix: Make the field nullable or add a non-VOLATILE DEFAULT" in output
    assert "squawk_accepted" in output

    snippet = f"import sqlalchemy as sa\nfrom alembic import op\n{ACCEPTED}{UNSAFE}"
    write_revision(revision, snippet, bin_dir)
    run(*safety, cwd=project)


def test_the_expand_contract_page_runs_step_by_step(
    fresh_project: Callable[[str], Path], postgres: Any
) -> None:
    steps = page_steps()
    assert [step.title.split(":")[0] for step in steps] == ["Step 1", "Step 2", "Step 3", "Step 4"]
    project = fresh_project("defaults")
    bin_dir = uv_sync(project)
    url = postgres.create_database("expand_contract")
    env = clean_environment(DATABASE_URL=url, TEST_DATABASE_URL=postgres.url)
    run(bin_dir / "demo_service", "migrate", cwd=project, env=env)
    postgres.psql("INSERT INTO users (email) VALUES ('ada@example.com')", "expand_contract")

    for step in steps:
        if step.model is not None:
            set_model(project, step.model)
        for command in step.commands:
            uv, verb, tool, *arguments = shlex.split(command.replace("<package>", "demo_service"))
            assert (uv, verb) == ("uv", "run"), command
            if tool == "alembic" and arguments[0] == "revision":
                revision = new_revision(project, bin_dir, arguments[-1])
                write_revision(revision, step.revision, bin_dir)
            else:
                result = run(bin_dir / tool, *arguments, cwd=project, env=env, check=False)
                assert result.returncode == 0, f"{step.title}: {command}\n{result.stdout}"

    column = "SELECT is_nullable FROM information_schema.columns WHERE column_name = 'nickname'"
    assert postgres.psql(column, "expand_contract") == "NO"
    assert postgres.psql("SELECT nickname FROM users", "expand_contract") == "ada"
    checks = "SELECT count(*) FROM pg_constraint WHERE conname = 'ck_users_nickname_not_null'"
    assert postgres.psql(checks, "expand_contract") == "0"
