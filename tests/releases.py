"""Template repositories with two tagged releases, made in temporary folders for update tests.

The newest release is always the working tree. The older one is either synthetic (the working
tree with a few known lines changed back, so every kind of template change is present and known)
or real (the repository's first commit, taken with `git archive`).
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

# Revisions the newest release adds: an owner of the older one has applied only those before,
# so the older release lacks these files (its models are the newest ones: nothing runs it).
NEW_REVISIONS = [
    "template/src/{{package_name}}/migrations/versions/{% if include_example_api %}"
    "2026_12_01_2100-6075cd3118f1_bigint_identity_keys_optional_full_name.py{% endif %}",
]


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
    """A repository whose OLDER tag lacks TEMPLATE_CHANGES and NEW_REVISIONS, NEWEST the tree."""
    repository = snapshot_template(destination)
    newest = git(repository, "rev-parse", "HEAD").strip()
    _edit(repository, to_older=True)
    git(repository, "rm", "--quiet", *NEW_REVISIONS)
    git(repository, "commit", "--quiet", "--all", "--amend", "--message", "Older release")
    git(repository, "tag", OLDER)
    _edit(repository, to_older=False)
    git(repository, "checkout", "--quiet", newest, "--", *NEW_REVISIONS)
    git(repository, "commit", "--quiet", "--all", "--message", "Newest release")
    git(repository, "tag", NEWEST)
    return repository


def first_commit_releases(destination: Path) -> Path:
    """A repository whose OLDER tag is this repository's first commit, NEWEST the working tree."""
    first = git(ROOT, "rev-list", "--max-parents=0", "HEAD").split()[0]
    destination.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", first], cwd=ROOT, check=True, capture_output=True
    )
    subprocess.run(["tar", "-x"], cwd=destination, input=archive.stdout, check=True)
    git(destination, "init", "--quiet", "--initial-branch", "main")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", f"First commit ({first[:12]})")
    git(destination, "tag", OLDER)
    git(destination, "rm", "--quiet", "-r", ".")
    _copy_tree(snapshot_template(destination.parent / "newest"), destination)
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message", "Newest release")
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
