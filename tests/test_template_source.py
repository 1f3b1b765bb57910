"""Rules for the template's own source: few conditionals, and CI running every nox session."""

import ast
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.render

ROOT = Path(__file__).resolve().parent.parent
MAX_CONDITIONALS = 3


def test_template_files_have_few_conditionals() -> None:
    crowded = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / "template").rglob("*.jinja")
        if (count := len(re.findall(r"\{%-?\s*if\b", path.read_text()))) > MAX_CONDITIONALS
    }

    assert not crowded, f"more than {MAX_CONDITIONALS} if-blocks; switch whole files instead"


def test_template_python_has_no_conditionals_inside_functions() -> None:
    for path in (ROOT / "template").rglob("*.py.jinja"):
        for line in path.read_text().splitlines():
            assert not re.match(r"\s+\{%", line), f"{path}: a Jinja block inside a body: {line}"


def test_ci_workflow_runs_every_default_nox_session() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())

    sessions = workflow["jobs"]["check"]["strategy"]["matrix"]["session"]
    assert sessions == default_nox_sessions()


def default_nox_sessions() -> list[str]:
    """The `nox.options.sessions` list of noxfile.py, read without importing nox."""
    for node in ast.walk(ast.parse((ROOT / "noxfile.py").read_text())):
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions":
            sessions: list[str] = ast.literal_eval(node.value)
            return sessions
    raise AssertionError("noxfile.py sets no nox.options.sessions")


def copier_settings() -> dict[str, object]:
    """The template's copier.yml."""
    settings: dict[str, object] = yaml.safe_load((ROOT / "copier.yml").read_text())
    return settings


def test_update_path_needs_no_trust() -> None:
    settings = copier_settings()

    assert "_tasks" not in settings
    assert "_jinja_extensions" not in settings
    assert "_external_data" not in settings


def test_every_question_but_the_name_has_a_default() -> None:
    questions = {k: v for k, v in copier_settings().items() if not k.startswith("_")}

    missing = [name for name, spec in questions.items() if "default" not in spec]  # type: ignore[operator]
    assert missing == ["project_name"]


def test_files_owners_grow_are_created_once() -> None:
    skipped = copier_settings()["_skip_if_exists"]

    assert skipped == [
        "src/*/db/models/__init__.py",
        "src/*/api/v1/__init__.py",
        "tests/integration/commands.py",
        "src/*/jobs/tasks.py",
    ]
    package = ROOT / "template" / "src" / "{{package_name}}"
    assert (package / "db" / "models" / "__init__.py.jinja").is_file()
    assert (package / "api" / "v1" / "__init__.py.jinja").is_file()
    assert (ROOT / "template" / "tests" / "integration" / "commands.py.jinja").is_file()
    assert (package / "{% if include_jobs %}jobs{% endif %}" / "tasks.py.jinja").is_file()


def test_every_release_in_the_changelog_says_how_to_upgrade() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.split(r"^## ", changelog, flags=re.MULTILINE)[1:]

    assert releases[0].startswith("[Unreleased]")
    for release in releases[1:]:
        assert re.match(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}\n", release), release[:40]
        assert "### Upgrading" in release, release.splitlines()[0]
