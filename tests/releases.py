"""Template repositories with two tagged releases, made in temporary folders for update tests.

The newest release is the working tree (the synthetic one adds a revision to it). The older one
is either synthetic (the working tree with a few known lines changed back, so every kind of
template change is present and known) or real: the 1.0.0 release commit, or the repository's
first commit, taken with `git archive`. Updating from a commit before 1.0.0 is not supported;
the first commit only proves that copier keeps an answer a later rule refuses.
"""

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT, git, snapshot_template

OLDER, NEWEST = "v0.9.0", "v1.0.0"

# What the newest release changes, as (file, text in the newest release, text in the older one).
TEMPLATE_CHANGES = [
    # A line added to a file the owner leaves alone.
    ("template/.gitignore", "htmlcov/\n", ""),
    # A line the owner changes too: the collision.
    (
        "template/src/{{package_name}}/core/errors.py.jinja",
        '"""Errors the application raises on purpose; `api.errors` maps each to an HTTP status.',
        '"""Errors raised on purpose by the application; `api.errors` maps them to statuses.',
    ),
    # A value changed in a file the owner leaves alone.
    (
        "template/src/{{package_name}}/core/settings.py.jinja",
        "health_timeout_seconds: float = Field(default=0.5, gt=0)",
        "health_timeout_seconds: float = Field(default=0.75, gt=0)",
    ),
    # A heading near the end of a file whose first line the owner changes.
    ("template/README.md.jinja", "## More", "## Further reading"),
    # A question the older release did not ask: its projects have no API authentication.
    (
        "copier.yml",
        """  default: "{{ 'none' if _copier_conf.overwrite else 'api_key' }}"\n""",
        "  default: none\n  when: false\n",
    ),
    # Another question the older release did not ask: its projects have no background jobs.
    (
        "copier.yml",
        "  help: Include background jobs on PostgreSQL (a `worker` command and its job queue)\n"
        "  default: false\n",
        "  help: Include background jobs on PostgreSQL (a `worker` command and its job queue)\n"
        "  default: false\n  when: false\n",
    ),
]

# A revision the newest release adds: a data fix, so the models need no change. An owner of the
# older release has applied the revisions before it; with one of their own, two heads follow.
NEW_REVISION = (
    "template/src/{{package_name}}/migrations/versions/{% if include_example_api %}"
    "2026_12_08_0900-5e1f0a2b3c4d_clear_empty_full_names.py{% endif %}.jinja"
)
NEW_REVISION_TEXT = """{%- set previous = "9c4e1b7a2d05" if include_jobs
    else ("3f7a2c91d0e4" if auth == "api_key" else "2b8d41c6e0f7") -%}
\"\"\"Clear the full names left empty: null says a user gave none.

Revision ID: 5e1f0a2b3c4d
Revises: {{ previous }}
Create Date: 2026-12-08 09:00:00+00:00
\"\"\"

from collections.abc import Sequence

from alembic import op

revision: str = "5e1f0a2b3c4d"
down_revision: str | Sequence[str] | None = "{{ previous }}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE users SET full_name = NULL WHERE full_name = ''")


def downgrade() -> None:
    pass  # the names were empty: nothing to give back
"""
RELEASE = "1.0.0"


def _edit(repository: Path, *, to_older: bool) -> None:
    for relative, newest, older in TEMPLATE_CHANGES:
        path = repository / relative
        before, after = (newest, older) if to_older else (older, newest)
        text = path.read_text()
        if before not in text:
            raise AssertionError(
                f"{relative} no longer contains {before!r}: update TEMPLATE_CHANGES"
            )
        path.write_text(text.replace(before, after, 1))


def synthetic_releases(destination: Path) -> Path:
    """A repository whose OLDER tag lacks TEMPLATE_CHANGES, NEWEST the tree and NEW_REVISION."""
    repository = snapshot_template(destination)
    _edit(repository, to_older=True)
    git(repository, "commit", "--quiet", "--all", "--amend", "--message", "Older release")
    git(repository, "tag", OLDER)
    _edit(repository, to_older=False)
    (repository / NEW_REVISION).write_text(NEW_REVISION_TEXT)
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--all", "--message", "Newest release")
    git(repository, "tag", NEWEST)
    return repository


def release_commit() -> str:
    """The commit that cut RELEASE: the first whose CHANGELOG has its section; else HEAD.

    Before that commit exists, HEAD stands in: an update from it is an update from the work the
    release will be made of.
    """
    found = git(
        ROOT, "log", "--reverse", "--format=%H", "-S", f"## [{RELEASE}]", "--", "CHANGELOG.md"
    ).split()
    return found[0] if found else git(ROOT, "rev-parse", "HEAD").strip()


def first_commit_releases(destination: Path) -> Path:
    """A repository whose OLDER tag is this repository's first commit, NEWEST the working tree."""
    return commit_releases(destination, git(ROOT, "rev-list", "--max-parents=0", "HEAD").split()[0])


def release_commit_releases(destination: Path) -> Path:
    """A repository whose OLDER tag is the 1.0.0 release commit, NEWEST the working tree."""
    return commit_releases(destination, release_commit())


def commit_releases(destination: Path, first: str) -> Path:
    """A repository whose OLDER tag is this repository's commit `first`, NEWEST the tree."""
    destination.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", first], cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(["tar", "-x"], cwd=destination, input=archive.stdout, check=True)
    git(destination, "init", "--quiet", "--initial-branch", "main")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", f"Older release ({first[:12]})")
    git(destination, "tag", OLDER)
    git(destination, "rm", "--quiet", "-r", ".")
    _copy_tree(snapshot_template(destination.parent / "newest"), destination)
    git(destination, "add", "--all")
    # Before the release commit exists HEAD stands in for it, and the tree may be the same.
    git(destination, "commit", "--quiet", "--allow-empty", "--message", "Newest release")
    git(destination, "tag", NEWEST)
    return destination


RENAME_MIGRATION = """
_migrations:
  # v1.0.0 renamed the question example_api to include_example_api.
  - version: v1.0.0
    when: "{{ _stage == 'before' }}"
    command:
      - "{{ _copier_python }}"
      - "{{ _copier_conf.src_path }}/copier_migrations/rename_answer.py"
      - example_api
      - include_example_api
"""


def renamed_answer_releases(destination: Path) -> Path:
    """A repository whose OLDER tag asks `example_api`, renamed in NEWEST with a migration."""
    repository = snapshot_template(destination)
    for path in sorted(repository.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if ".git" in path.parts:
            continue
        text = path.read_bytes() if path.is_file() else b""
        if b"include_example_api" in text:
            path.write_bytes(text.replace(b"include_example_api", b"example_api"))
        if "include_example_api" in path.name:
            path.rename(path.with_name(path.name.replace("include_example_api", "example_api")))
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--amend", "--message", "Older release")
    git(repository, "tag", OLDER)
    git(repository, "rm", "--quiet", "-r", ".")
    newest = snapshot_template(destination.parent / "newest")
    _copy_tree(newest, repository)
    with (repository / "copier.yml").open("a") as copier_yml:
        copier_yml.write(RENAME_MIGRATION)
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--message", "Newest release")
    git(repository, "tag", NEWEST)
    return repository


def _copy_tree(source: Path, destination: Path) -> None:
    """Copy every entry of `source` but its .git into `destination`."""
    for entry in source.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir():
            shutil.copytree(entry, destination / entry.name, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, destination / entry.name)
