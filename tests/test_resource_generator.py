"""`new resource` refuses, in one line and writing nothing, what it cannot write well.

The resources it does write are proven in the first hour (tests/test_first_hour.py): the
README's, one referring to it and one of every type and modifier, then lint, types and the
project's whole suite, for each `auth`. Here: each refusal leaves the tree as it was, the
model an owner left unmigrated included.
"""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.tools import clean_environment, package_of, uv_sync

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


def generate(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `new resource` as the README does, in the project's own environment."""
    command = project / ".venv" / "bin" / package_of(project)
    return subprocess.run(
        [command, "new", "resource", *arguments],
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


def test_new_resource_refuses_in_one_line_and_writes_nothing(
    fresh_project: Callable[[str], Path],
) -> None:
    project = fresh_project("defaults")
    uv_sync(project)
    git(project, "init", "--quiet")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "rendered")

    for arguments, message in REFUSED:
        result = generate(project, *arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        refusal = [line for line in result.stderr.splitlines() if not line.startswith("Local ")]
        assert len(refusal) == 1, (arguments, result.stderr)
        assert message in refusal[0], (arguments, refusal)
        assert untouched(project) == "", (arguments, untouched(project))

    # A model the owner changed without a revision: the generator's migration would carry the
    # owner's change too, so it refuses, and only the owner's edit remains.
    model = project / "src" / package_of(project) / "db" / "models" / "user.py"
    anchor = "    full_name: Mapped[str | None]"
    new_column = "    nickname: Mapped[str | None] = mapped_column(String(50))\n"
    model.write_text(model.read_text().replace(anchor, new_column + anchor))
    result = generate(project, "shops", "name:str")
    assert result.returncode == 2, result.stderr
    assert "the models differ from the migrations beyond the new table" in result.stderr
    assert "add_column(users)" in result.stderr
    assert untouched(project).splitlines() == [f" M src/{package_of(project)}/db/models/user.py"]
