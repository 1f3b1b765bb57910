"""`copier update` from an older release never loses an owner's edit.

Owner edits survive, template changes land, and a collision shows as conflict markers in that
file only; the updated project's own suite then passes, its migration gate included.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, render
from tests.releases import (
    NEWEST,
    OLDER,
    first_commit_releases,
    release_commit_releases,
    renamed_answer_releases,
    synthetic_releases,
)
from tests.tools import clean_environment, run, uv_sync

pytestmark = pytest.mark.update

ANSWERS: dict[str, object] = {"project_name": "Demo Service"}
# What a project rendered before the `auth` question has, and keeps on update: an open API.
UPDATED_ANSWERS: dict[str, object] = {**ANSWERS, "auth": "none"}
PACKAGE = Path("src/demo_service")
MARKERS = re.compile(r"^(<<<<<<< before updating|=======|>>>>>>> after updating)$", re.MULTILINE)
MERGE = 'uv run alembic merge heads -m "merge template revisions"'
ONE_HEAD = "tests/db/test_migrations.py::test_migrations_have_one_head"

OWN_MODEL = '''"""A tag, the owner's own model."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from demo_service.db.base import Base


class Tag(Base):
    """A label for things."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
'''

OWN_MIGRATION = '''"""Add tags.

Revision ID: 7a9c0e1f2b3d
Revises: 2b8d41c6e0f7
Create Date: 2026-11-23 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a9c0e1f2b3d"
down_revision: str | Sequence[str] | None = "2b8d41c6e0f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("label", name=op.f("uq_tags_label")),
    )


def downgrade() -> None:
    op.drop_table("tags")


squawk_accepted = {
    "prefer-identity": "written before the template's keys became identities",
}
'''


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository with a synthetic older release and the working tree as newest."""
    return synthetic_releases(tmp_path_factory.mktemp("releases") / "keel")


def owned_project(
    releases: Path, destination: Path, version: str = OLDER, answers: dict[str, object] = ANSWERS
) -> Path:
    """Render a release and commit it, as a user starting a service does."""
    render(releases, destination, answers, vcs_ref=version)
    git(destination, "init", "--quiet", "--initial-branch", "main")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", "Rendered from Keel")
    return destination


def update(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run `copier update` non-interactively, as a user (or a bot) would; no --trust."""
    command = [sys.executable, "-m", "copier", "update", "--defaults", *options]
    return subprocess.run(
        command, cwd=project, env=clean_environment(), capture_output=True, text=True, check=False
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file below `root` (outside .git) and its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def edit(path: Path, old: str, new: str) -> None:
    """Replace text the file must contain."""
    text = path.read_text()
    assert old in text, f"{path} lacks {old!r}"
    path.write_text(text.replace(old, new, 1))


def keep_own_side(path: Path) -> None:
    """Resolve every conflict in a file by keeping the owner's lines."""
    pattern = r"<<<<<<< before updating\n(.*?)=======\n.*?>>>>>>> after updating\n"
    path.write_text(re.sub(pattern, r"\1", path.read_text(), flags=re.DOTALL))


def test_update_keeps_owner_edits_applies_template_changes_and_marks_the_collision(
    releases: Path, postgres: Any, tmp_path: Path
) -> None:
    project = owned_project(releases, tmp_path / "service")
    # The owner's edits.
    edit(project / PACKAGE / "main.py", 'title="Demo Service"', 'title="Billing"')
    # What `uv run demo_service openapi > openapi.json` writes after that edit.
    edit(project / "openapi.json", '"title": "Demo Service"', '"title": "Billing"')
    edit(project / "README.md", "# Demo Service\n", "# Demo Service, owned by billing\n")
    edit(
        project / PACKAGE / "core" / "errors.py",
        '"""Errors raised on purpose by the application;',
        '"""Errors our service raises on purpose;',
    )
    (project / ".env.example").unlink()
    (project / PACKAGE / "db" / "models" / "tag.py").write_text(OWN_MODEL)
    edit(
        project / PACKAGE / "db" / "models" / "__init__.py",
        "from demo_service.db.models.post import Post\n",
        "from demo_service.db.models.post import Post\n"
        "from demo_service.db.models.tag import Tag\n",
    )
    versions = project / PACKAGE / "migrations" / "versions"
    (versions / "2026_11_23_0900-7a9c0e1f2b3d_add_tags.py").write_text(OWN_MIGRATION)
    edit(project / "pyproject.toml", '    "fastapi>=', '    "orjson>=3.13.0",\n    "fastapi>=')
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Owner's edits")

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr  # copier reports conflicts only in files...
    assert "conflict markers" in result.stdout + result.stderr  # ...and in the template's message
    # Every owner edit survived.
    assert 'title="Billing"' in (project / PACKAGE / "main.py").read_text()
    assert (project / "README.md").read_text().startswith("# Demo Service, owned by billing\n")
    assert not (project / ".env.example").exists()
    assert (project / PACKAGE / "db" / "models" / "tag.py").read_text() == OWN_MODEL
    assert "import Tag" in (project / PACKAGE / "db" / "models" / "__init__.py").read_text()
    assert (versions / "2026_11_23_0900-7a9c0e1f2b3d_add_tags.py").exists()
    assert '"orjson>=3.13.0"' in (project / "pyproject.toml").read_text()
    # Every template change that collides with nothing landed.
    assert "htmlcov/" in (project / ".gitignore").read_text()
    settings = (project / PACKAGE / "core" / "settings.py").read_text()
    assert "health_timeout_seconds: float = Field(default=0.5, gt=0)" in settings
    assert "## More" in (project / "README.md").read_text()
    # The collision is marked in that file, and only there.
    errors = project / PACKAGE / "core" / "errors.py"
    marked = [name for name, data in tree(project).items() if MARKERS.search(data.decode())]
    assert marked == [str(errors.relative_to(project))]
    assert git(project, "status", "--porcelain", "--", str(errors)).startswith("UU ")
    # The answers file holds the new version and the old answers.
    answers = (project / ".copier-answers.yml").read_text()
    assert f"_commit: {NEWEST}" in answers
    assert "project_name: Demo Service" in answers

    keep_own_side(errors)
    assert '"""Errors our service raises on purpose;' in errors.read_text()
    git(project, "add", "--all")
    uv_sync(project)
    # The template's new revision and the owner's both revise the initial one: two heads.
    assert MERGE in result.stdout + result.stderr
    uv_run = (sys.executable, "-m", "uv", "run")
    gate = run(*uv_run, "pytest", "-q", "--no-cov", ONE_HEAD, cwd=project, check=False)
    assert gate.returncode != 0
    assert f"  {MERGE}\n" in gate.stdout
    uv, subcommand, *merge_command = shlex.split(MERGE)
    assert (uv, subcommand) == ("uv", "run")
    run(*uv_run, *merge_command, cwd=project)
    (merge,) = versions.glob("*_merge_template_revisions.py")
    assert {"7a9c0e1f2b3d", "5e1f0a2b3c4d"} <= set(re.findall(r"[0-9a-f]{12}", merge.read_text()))
    run(*uv_run, "pytest", "-q", cwd=project, env=clean_environment(TEST_DATABASE_URL=postgres.url))


def test_update_without_owner_edits_gives_the_fresh_render(releases: Path, tmp_path: Path) -> None:
    project = owned_project(releases, tmp_path / "updated")

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    fresh = render(releases, tmp_path / "fresh", UPDATED_ANSWERS, vcs_ref=NEWEST)
    assert tree(project) == tree(fresh)


@pytest.fixture(scope="module")
def release_commit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository whose older tag is the 1.0.0 release commit, newest the tree."""
    return release_commit_releases(tmp_path_factory.mktemp("release") / "keel")


# Every feature of 1.0.0; the Python named, since a default may move between releases.
RELEASE_ANSWERS = {**ANSWERS, "auth": "api_key", "include_jobs": True, "python_version": "3.13"}


def test_update_from_the_release_commit_gives_the_fresh_render(
    release_commit: Path, tmp_path: Path
) -> None:
    project = owned_project(release_commit, tmp_path / "updated", answers=RELEASE_ANSWERS)

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    fresh = render(release_commit, tmp_path / "fresh", RELEASE_ANSWERS, vcs_ref=NEWEST)
    assert tree(project) == tree(fresh)


def test_update_from_the_release_commit_keeps_the_resources_it_generated(
    release_commit: Path, postgres: Any, tmp_path: Path
) -> None:
    project = owned_project(release_commit, tmp_path / "updated", answers=RELEASE_ANSWERS)
    command = uv_sync(project) / "demo_service"
    for resource in ("shops name:str:unique", "products title:str shop:ref:shops"):
        run(command, "new", "resource", *resource.split(), cwd=project)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Shops and products, by the 1.0.0 generator")
    tracked = git(project, "ls-files").split()
    generated = {
        name: (project / name).read_bytes()
        for name in tracked
        if re.search(r"shops|products|shop\.py|product\.py", name)
    }
    registries = {name: (project / name).read_bytes() for name in REGISTRIES}

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    assert len(generated) == 12  # 5 modules and a revision each
    assert {name: (project / name).read_bytes() for name in generated} == generated
    assert {name: (project / name).read_bytes() for name in REGISTRIES} == registries
    changed = git(project, "ls-files", "--modified", "--others", "--exclude-standard").split()
    assert not [name for name in changed if MARKERS.search((project / name).read_text())]
    checks = ("tests/api/v1/test_shops.py", "tests/api/v1/test_products.py")
    assert " passed" in own_checks(project, postgres, *checks)


REGISTRIES = (f"{PACKAGE}/db/models/__init__.py", f"{PACKAGE}/api/v1/__init__.py")


def test_update_into_oidc_require_at_jwt_keeps_accepting_tokens_typed_jwt(
    release_commit: Path, tmp_path: Path
) -> None:
    answers = {**RELEASE_ANSWERS, "auth": "oidc"}
    project = owned_project(release_commit, tmp_path / "service", answers=answers)
    settings = project / PACKAGE / "core" / "settings.py"

    # 1.0.0 accepted any `typ`: an update must not start refusing its issuer's tokens.
    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    assert "oidc_require_at_jwt: false\n" in (project / ".copier-answers.yml").read_text()
    assert "oidc_require_at_jwt: bool = False\n" in settings.read_text()
    fresh = render(release_commit, tmp_path / "fresh", answers, vcs_ref=NEWEST)
    assert (
        "oidc_require_at_jwt: bool = True\n" in (fresh / settings.relative_to(project)).read_text()
    )

    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Updated")
    switched = update(project, "--vcs-ref", NEWEST, "--data", "oidc_require_at_jwt=true")

    assert switched.returncode == 0, switched.stderr
    assert "oidc_require_at_jwt: bool = True\n" in settings.read_text()
    assert not MARKERS.search(settings.read_text())


def own_checks(project: Path, postgres: Any, *feature_tests: str) -> str:
    """Run a project's tests of a feature, its migration gate and API contract."""
    uv_sync(project)
    checks = (*feature_tests, "tests/db/test_migrations.py", "tests/api/test_openapi_contract.py")
    uv_run = (sys.executable, "-m", "uv", "run")
    env = clean_environment(TEST_DATABASE_URL=postgres.url)
    return run(*uv_run, "pytest", "-q", "--no-cov", *checks, cwd=project, env=env).stdout


def test_update_into_auth_keeps_the_api_open_until_the_owner_switches_to_api_keys(
    releases: Path, postgres: Any, tmp_path: Path
) -> None:
    project = owned_project(releases, tmp_path / "service")
    users = project / PACKAGE / "api" / "v1" / "users.py"

    # A release before `auth`: `--defaults` must not lock the owner out of their own API.
    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    assert "auth: none\n" in (project / ".copier-answers.yml").read_text()
    assert not (project / PACKAGE / "api" / "security.py").exists()
    assert "dependencies=" not in users.read_text()

    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Updated")
    switched = update(project, "--vcs-ref", NEWEST, "--data", "auth=api_key")

    assert switched.returncode == 0, switched.stderr
    assert "auth: api_key\n" in (project / ".copier-answers.yml").read_text()
    assert "dependencies=[can_write]" in users.read_text()
    versions = project / PACKAGE / "migrations" / "versions"
    assert len(list(versions.glob("*_create_api_keys.py"))) == 1
    assert not [name for name, data in tree(project).items() if MARKERS.search(data.decode())]
    # The switched project's own checks of its keys and of its migrations pass.
    assert " passed" in own_checks(project, postgres, "tests/auth")


def test_update_into_jobs_adds_no_worker_until_the_owner_switches_jobs_on(
    releases: Path, postgres: Any, tmp_path: Path
) -> None:
    project = owned_project(releases, tmp_path / "service")
    versions = project / PACKAGE / "migrations" / "versions"

    # A release before `include_jobs`: nothing new to run, no queue in the database.
    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    assert "include_jobs: false\n" in (project / ".copier-answers.yml").read_text()
    assert not (project / PACKAGE / "jobs").exists()
    assert not list(versions.glob("*_install_job_queue.py"))
    assert "worker" not in (project / "compose.yaml").read_text()

    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Updated")
    switched = update(project, "--vcs-ref", NEWEST, "--data", "include_jobs=true")

    assert switched.returncode == 0, switched.stderr
    assert "include_jobs: true\n" in (project / ".copier-answers.yml").read_text()
    assert len(list(versions.glob("*_install_job_queue.py"))) == 1
    assert 'command: ["worker"]' in (project / "compose.yaml").read_text()
    assert not [name for name, data in tree(project).items() if MARKERS.search(data.decode())]
    # The switched project's jobs, its migration gate and its API contract pass its own tests.
    assert " passed" in own_checks(project, postgres, "tests/jobs")


def test_update_of_a_dirty_project_is_refused_and_changes_nothing(
    releases: Path, tmp_path: Path
) -> None:
    project = owned_project(releases, tmp_path / "dirty")
    edit(project / "README.md", "# Demo Service\n", "# Uncommitted title\n")
    before = tree(project)

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode != 0
    assert "dirty" in result.stderr.lower()
    assert tree(project) == before


def test_update_across_a_renamed_question_keeps_the_answer(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    releases = renamed_answer_releases(tmp_path_factory.mktemp("renamed") / "keel")
    project = owned_project(
        releases, tmp_path / "service", answers={**ANSWERS, "example_api": False}
    )

    refused = update(project, "--vcs-ref", NEWEST)
    result = update(project, "--vcs-ref", NEWEST, "--trust")

    assert refused.returncode != 0  # copier runs migration scripts only when trusted
    assert "--trust" in refused.stderr
    assert result.returncode == 0, result.stderr
    answers = (project / ".copier-answers.yml").read_text()
    assert "include_example_api: false" in answers
    assert "example_api:" not in answers.replace("include_example_api:", "")
    assert not (project / PACKAGE / "api" / "v1" / "users.py").exists()


@pytest.mark.parametrize(
    "package", ["certifi", "inventory_and_shipping_ledger_reconciliation"], ids=["shadow", "long"]
)
def test_update_keeps_an_answer_a_later_rule_refuses(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, package: str
) -> None:
    # Accepted by the first release, refused for new projects today: an update must keep it,
    # not drop it for the default (copier's way with a replayed answer its validator refuses).
    releases = first_commit_releases(tmp_path_factory.mktemp("first") / "keel")
    answers = {**ANSWERS, "package_name": package}
    project = owned_project(releases, tmp_path / "service", answers=answers)

    result = update(project, "--vcs-ref", NEWEST)

    assert result.returncode == 0, result.stderr
    assert f"package_name: {package}\n" in (project / ".copier-answers.yml").read_text()
    assert (project / "src" / package / "main.py").is_file()
    assert not (project / "src" / "demo_service").exists()
