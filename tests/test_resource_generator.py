"""`new resource` and `remove resource`: refusals that change nothing, and an exact inverse.

Each refuses, in one line and changing nothing, what it cannot do well; `remove resource`
undoes `new resource`, and takes the example API out.

The resources `new` writes are proven in the first hour (tests/test_first_hour.py): the
README's, one referring to it and one of every type and modifier, then lint, types and the
project's whole suite, for each `auth`. Here: each refusal leaves the tree as it was, the
model an owner left unmigrated included; and removing what `new` wrote and the example leaves
what a render without the example holds, plus the revisions, with every gate green.
"""

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.answers import ANSWER_SETS
from tests.conftest import git, render
from tests.resource_fields import refused_lines
from tests.tools import UV, clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.generated

# Each command line, and what its one line of refusal says.
REFUSED = [
    (["shops"], "the following arguments are required: FIELD:TYPE[:MODIFIER]"),
    (["shops", "name"], "field 'name' has no type"),
    (["shops", "name:string"], "unknown type 'string'"),
    (["shops", "name:str:unique:often"], "unknown modifier 'often'"),
    (["shops", "name:str:0"], "a str length is from 1 to 10000"),
    (["shops", "flag:bool:unique"], "a unique bool holds two rows at most"),
    (["shops", "name:str", "name:text"], "field 'name' is given twice"),
    (["select", "name:str"], "resource 'select' is a reserved word of SQL"),
    (["shops", "class:str"], "field 'class' is a Python keyword"),
    (["shops", "order:int"], "field 'order' is a reserved word of SQL"),
    (["shops", "format:str"], "field 'format' is a Python builtin"),
    (["shops", "created_at:datetime"], "field 'created_at' is a name the generated code uses"),
    (["Shops", "name:str"], "resource 'Shops' must be lowercase letters"),
    (["shops", "owner:ref:owners"], "refers to 'owners', which is no table of the models"),
    (["shops", "shop:ref:shops"], "a resource referring to itself is yours"),
    (["users", "name:str"], "there is a resource 'users' already"),
]


def generate(project: Path, *arguments: str, verb: str = "new") -> subprocess.CompletedProcess[str]:
    """Run `new resource` (or `remove resource`) in the project's own environment."""
    command = project / ".venv" / "bin" / package_of(project)
    return subprocess.run(
        [command, verb, "resource", *arguments],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def untouched(project: Path) -> str:
    """What git sees changed in the project beyond its install (empty when nothing)."""
    return git(project, "status", "--porcelain", "--untracked-files=all", "--", ".", ":!.local")


def committed(project: Path, message: str) -> None:
    """Commit everything in the project, making it a repository first if need be."""
    if not (project / ".git").exists():
        git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", message)


def assert_refused(project: Path, arguments: list[str], message: str, verb: str = "new") -> None:
    """The command refuses in one line naming `message`, and the tree is as it was."""
    result = generate(project, *arguments, verb=verb)
    assert result.returncode == 2, (arguments, result.stderr)
    refusal = [line for line in result.stderr.splitlines() if not line.startswith("Local ")]
    assert len(refusal) == 1, (arguments, result.stderr)
    assert message in refusal[0], (arguments, refusal)
    assert untouched(project) == "", (arguments, untouched(project))


@settings(
    max_examples=1,  # one project a run, each line refused in it in turn
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=st.lists(refused_lines(), min_size=6, max_size=6))
def test_new_resource_refuses_in_one_line_and_writes_nothing(
    fresh_project: Callable[[str], Path], drawn: list[list[str]]
) -> None:
    project = fresh_project("defaults")
    uv_sync(project)
    committed(project, "rendered")

    for arguments, message in REFUSED:
        assert_refused(project, arguments, message)
    for arguments in drawn:  # any one-line refusal, the tree left as it was
        assert_refused(project, arguments, "")

    # A model the owner changed without a revision: the generator's migration would carry the
    # owner's change too, so it refuses, and only the owner's edit remains.
    model = project / "src" / package_of(project) / "db" / "models" / "user.py"
    anchor = "    full_name: Mapped[str | None]"
    new_column = "    nickname: Mapped[str | None] = mapped_column(String(50))\n"
    model.write_text(model.read_text().replace(anchor, new_column + anchor))
    result = generate(project, "shops", "name:str")
    assert result.returncode == 2, result.stderr
    assert "the models differ from the migrations beyond the tables of shops" in result.stderr
    assert "add_column(users)" in result.stderr
    assert untouched(project).splitlines() == [f" M src/{package_of(project)}/db/models/user.py"]


def test_remove_resource_undoes_new_resource_and_takes_out_the_example(
    fresh_project: Callable[[str], Path], template: Path, postgres: Any, tmp_path: Path
) -> None:
    # OIDC, jobs and the example: the answers whose example reaches furthest (its welcome job).
    answers = ANSWER_SETS["identity"]
    project = fresh_project("identity")
    package = package_of(project)
    uv_sync(project)
    for resource in ("shops name:str:unique", "products title:str shop:ref:shops"):
        assert generate(project, *resource.split()).returncode == 0
    committed(project, "two resources")
    readme = (project / "README.md").read_text()
    removals = re.findall(rf"`(uv run {package} remove resource [^`]+)`", readme)
    assert removals == [
        f"uv run {package} remove resource products shops",
        f"uv run {package} remove resource posts users",
    ]

    assert_refused(project, ["shops"], "shops still used by", verb="remove")
    assert_refused(project, ["orders"], "there is no resource 'orders'", verb="remove")
    assert_refused(
        project, ["posts"], f"go together: `{package} remove resource posts users`", verb="remove"
    )
    # For a rolling deploy: the code first, the models and tables kept; no revision yet.
    versions = project / "src" / package / "migrations" / "versions"
    revisions = set(versions.iterdir())
    assert generate(project, "products", "shops", "--keep-tables", verb="remove").returncode == 0
    assert set(versions.iterdir()) == revisions
    models = project / "src" / package / "db" / "models"
    assert (models / "shop.py").exists()
    assert (models / "product.py").exists()
    assert not (project / "tests" / "api" / "v1" / "test_shops.py").exists()
    env = clean_environment(PATH=f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}")
    for removal in removals:  # as the README writes them, through a shell
        run("bash", "-e", "-c", removal, cwd=project, env=env)

    without = render(template, tmp_path / "without", {**answers, "include_example_api": False})
    assert files(project) == files(without)
    rendered = without / "src" / package / "migrations" / "versions"
    added = {
        path.name.split("_", 4)[-1]
        for path in versions.glob("*.py")
        if not (rendered / path.name).exists()
    }
    assert added == {
        "create_users_and_posts.py",  # history stays: databases have run it
        "create_shops.py",
        "create_products.py",
        "drop_products_and_shops.py",
        "drop_posts_and_users.py",
    }
    for check in (("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)):
        run(project / ".venv" / "bin" / check[0], *check[1:], cwd=project)
    suite = run(
        UV,
        "run",
        "pytest",
        "-q",
        cwd=project,
        env=clean_environment(TEST_DATABASE_URL=postgres.url),
    )
    assert re.search(r"^\d+ passed", suite.stdout.splitlines()[-1]), suite.stdout[-500:]


def files(project: Path) -> dict[str, bytes]:
    """The project's own files and their bytes: no install, cache, local data or revision."""
    skipped = {".git", ".venv", ".local", "__pycache__", ".pytest_cache", ".mypy_cache"}
    skipped |= {".ruff_cache", "versions"}
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file()
        and not skipped.intersection(path.relative_to(project).parts)
        and path.name not in {"uv.lock", ".coverage"}
    }
