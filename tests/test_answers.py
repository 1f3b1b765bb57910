"""Bad answers are refused at the prompt with a message saying what is allowed; nothing is left."""

import subprocess
import sys
from pathlib import Path

import pytest
from copier import run_copy

from tests.tools import clean_environment

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
    ({"author_email": "not-an-email"}, "must look like name@example.com"),
    ({"python_version": "3.9"}, "3.9"),
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


def test_answers_slug_and_package_derive_from_a_non_ascii_name(
    template: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "service"

    run_copy(
        str(template),
        destination,
        data={"project_name": "  Café Überwachung: Größe 2!  "},
        defaults=True,
        vcs_ref="HEAD",
        quiet=True,
    )

    answers = (destination / ".copier-answers.yml").read_text()
    assert "project_slug: cafe-uberwachung-grosse-2" in answers
    assert "package_name: cafe_uberwachung_grosse_2" in answers
