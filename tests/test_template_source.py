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
