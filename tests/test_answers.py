"""Bad answers are refused at the prompt with a message saying what is allowed; nothing is left."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from copier import run_copy

from tests.answers import EVERY_DEPENDENCY
from tests.module_names import committed_lists, installed_modules, stdlib_modules
from tests.tools import clean_environment, package_of, uv_sync

pytestmark = pytest.mark.render

BAD_ANSWERS = [
    ({"project_name": "   "}, "must not be empty"),
    ({"project_name": 'Say "hi"'}, "may not contain double quotes"),
    ({"project_slug": "Bad Slug"}, "lowercase ASCII words joined by single hyphens"),
    ({"package_name": "2fast"}, "lowercase Python identifier starting with a letter"),
    ({"package_name": "my-service"}, "lowercase Python identifier"),
    ({"package_name": "class"}, "is a Python keyword"),
    ({"package_name": "json"}, "would shadow the standard library module"),
    ({"package_name": "sqlalchemy"}, "would shadow a module the service imports"),
    ({"package_name": "tests"}, "would shadow a module the service imports or a folder"),
    ({"package_name": "test"}, "would shadow a module the service imports"),
    ({"package_name": "sitecustomize"}, "would shadow a module the service imports"),
    ({"package_name": "xdist"}, "would shadow a module the service imports"),
    ({"package_name": "pythonjsonlogger"}, "would shadow a module the service imports"),
    ({"package_name": "a" * 41}, "at most 40 characters long; got 41"),
    ({"project_slug": "a" * 41}, "at most 40 characters long; got 41"),
    ({"project_name": "W" * 65}, "at most 64 columns wide"),
    (
        {"project_name": "倉庫" * 17},
        "at most 64 columns wide (East Asian letters count two); got 68",
    ),
    ({"project_name": "Tab\tName"}, "control characters (line breaks,"),
    ({"project_name": "Carriage\rReturn"}, 'got "Carriage\\rReturn"'),
    ({"project_name": "Next\x85Line"}, "control characters"),
    ({"project_name": "Hidden\u202eText"}, "bidirectional overrides"),
    ({"description": "Bell\x07"}, "The description may not contain"),
    ({"author_name": "Null\x00"}, "The author name may not contain"),
    ({"author_email": "zoe@example.com\x7f"}, "The author email may not contain"),
    ({"author_email": "not-an-email"}, "must look like name@example.com"),
    ({"python_version": "3.9"}, "3.9"),
    ({"auth": "basic"}, "basic"),
    ({"package_name": "jwt"}, "would shadow a module the service imports"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=lambda value: str(value))
def test_answers_bad_value_is_refused_and_leaves_nothing(
    template: Path, tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    destination = tmp_path / "service"

    with pytest.raises(ValueError, match=r"Validation error|Invalid choice|not a valid") as caught:
        run_copy(
            str(template),
            destination,
            data={"project_name": "Demo", **answers},
            defaults=True,
            vcs_ref="HEAD",
            quiet=True,
        )

    assert message in str(caught.value)
    assert not destination.exists()


def test_answers_bad_value_on_the_command_line_exits_with_the_message(
    template: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "service"

    result = subprocess.run(
        [
            *(sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD"),
            *("--data", "project_name=Demo", "--data", "package_name=class"),
            *(str(template), str(destination)),
        ],
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert '"class" is a Python keyword' in result.stderr
    assert not destination.exists()


def derived_answers(template: Path, tmp_path: Path, project_name: str) -> str:
    """The answers file of a project rendered with only a name given."""
    destination = tmp_path / "service"
    run_copy(
        str(template),
        destination,
        data={"project_name": project_name},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )
    return (destination / ".copier-answers.yml").read_text()


def test_answers_slug_and_package_derive_from_a_non_ascii_name(
    template: Path, tmp_path: Path
) -> None:
    answers = derived_answers(template, tmp_path, "  Café Überwachung: Größe 2!  ")

    assert "project_slug: cafe-uberwachung-grosse-2" in answers
    assert "package_name: cafe_uberwachung_grosse_2" in answers


def test_answers_refused_modules_cover_a_real_install(rendered: Callable[[str], Path]) -> None:
    project = rendered(EVERY_DEPENDENCY)
    venv = uv_sync(project, all_extras=True).parent
    stdlib, dependencies = committed_lists()

    missing_stdlib = stdlib_modules() - stdlib
    missing = installed_modules(venv, package_of(project)) - stdlib - dependencies
    assert not missing_stdlib, f"run `nox -s names`: {sorted(missing_stdlib)}"
    assert not missing, f"run `nox -s names`: {sorted(missing)}"


def test_answers_derived_slug_fits_the_limit_and_starts_with_a_letter(
    template: Path, tmp_path: Path
) -> None:
    name = "3D Très Grande Société Générale des Chemins de Fer Européens"

    answers = derived_answers(template, tmp_path, name)

    assert "project_slug: tres-grande-societe-generale-des-chemins\n" in answers
    assert "package_name: tres_grande_societe_generale_des_chemins\n" in answers
