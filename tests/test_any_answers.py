"""Any valid answers render a clean project: hypothesis draws them from the whole valid space.

A render takes about half a second and a lint run longer, so each example is a batch of answer
sets rendered one after another and linted together: one ruff run, one shared mypy cache.
"""

import itertools
import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import render
from tests.module_names import offered_pythons
from tests.tools import run, template_debris

pytestmark = pytest.mark.render

BATCH = 6
EXAMPLES = 3
# Letters a name may hold: ASCII, Latin letters the slug folds (é -> e), letters it drops
# (Greek, Cyrillic, CJK, Hangul), wide ones that count two columns, and punctuation but the
# double quote and backslash, which the validators refuse.
NAME_ALPHABET = (
    string.ascii_letters
    + string.digits
    + " -_.,:;!?'()&+/@#%{}[]<>|~*=$^`"
    + "àéîõüçñßøåæœłšžğıþ"
    + "ΩλдЖ日本語한국🚀"
)
SLUG = r"[a-z][a-z0-9]{0,12}(-[a-z0-9]{1,12}){0,5}"
PACKAGE = r"[a-z][a-z0-9_]{0,39}"


def free_text(max_size: int) -> st.SearchStrategy[str]:
    """Text a user may type for a name, a description or an author."""
    return st.text(NAME_ALPHABET, max_size=max_size)


@st.composite
def answer_sets(draw: st.DrawFn) -> dict[str, Any]:
    """One set of answers: every question drawn, or left to its derived default."""
    answers: dict[str, Any] = {
        "project_name": draw(free_text(64).filter(str.strip)),
        "python_version": draw(st.sampled_from(offered_pythons())),
        "include_example_api": draw(st.booleans()),
    }
    optional = {
        "project_slug": st.from_regex(SLUG, fullmatch=True).filter(lambda s: len(s) <= 40),
        "package_name": st.from_regex(PACKAGE, fullmatch=True),
        "description": free_text(120),
        "author_name": free_text(40),
        "author_email": st.emails(),
        "auth": st.sampled_from(["none", "api_key", "oidc"]),
        "include_jobs": st.booleans(),
        "oidc_require_at_jwt": st.booleans(),  # asked only with auth=oidc
    }
    for question, values in optional.items():
        if draw(st.booleans()):
            answers[question] = draw(values)
    return answers


def openapi_title(project: Path) -> str:
    """The title of the project's committed OpenAPI document."""
    document = json.loads((project / "openapi.json").read_text(encoding="utf-8"))
    return str(document["info"]["title"])


def answered_name(project: Path) -> str:
    """The project name the answers file records, as the app shows it."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return str(answers["project_name"]).strip()


def refusal_of(template: Path, destination: Path, answers: dict[str, Any]) -> str | None:
    """Render the answers; return the validators' message if they refuse them."""
    try:
        render(template, destination, answers)
    except ValueError as refusal:
        return str(refusal)
    return None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # No shrinking: each try renders a batch, and the failing batch is printed as it is.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(answer_sets(), min_size=BATCH, max_size=BATCH))
def test_any_answers_render_lint_format_and_type_clean(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    typing_tools: Path,
    mypy_cache: Path,
    batch: list[dict[str, Any]],
) -> None:
    root = tmp_path_factory.mktemp("any-answers")
    projects = []
    for number, answers in enumerate(batch):
        destination = root / f"project-{number}"
        refusal = refusal_of(template, destination, answers)
        if refusal is None:
            projects.append(destination)
        else:  # answers the validators refuse are refused cleanly
            assert "Validation error for question" in refusal
            assert not destination.exists()

    assert projects, "the validators refused every answer set of the batch"
    run("ruff", "check", "--no-cache", *projects, cwd=root)
    run("ruff", "format", "--no-cache", "--check", *projects, cwd=root)
    for project in projects:
        assert not template_debris(project)
        # The API's committed contract names the service as its app does, in valid JSON.
        assert openapi_title(project) == answered_name(project)
        # Run from the batch's folder, so each project's modules are cached under paths of
        # their own: two projects' `tests/probe.py` may match in size and mtime.
        mypy = (typing_tools / "mypy", "--python-executable", typing_tools / "python")
        config = ("--config-file", project / "pyproject.toml", "--cache-dir", mypy_cache)
        run(*mypy, *config, project / "src", project / "tests", cwd=root)


FEATURES: dict[str, list[object]] = {
    "include_example_api": [True, False],
    "auth": ["none", "api_key", "oidc"],
    "include_jobs": [False, True],
}
# Questions asked only for one answer of another, with the values they then take.
FOLLOW_UPS: dict[str, tuple[str, object, list[object]]] = {
    "oidc_require_at_jwt": ("auth", "oidc", [True, False]),
}


def every_combination() -> list[dict[str, object]]:
    """Each feature's every value beside every other's, with each follow-up question's too."""
    combinations = [
        dict(zip(FEATURES, values, strict=True)) for values in itertools.product(*FEATURES.values())
    ]
    for question, (asked_by, answer, values) in FOLLOW_UPS.items():
        combinations = [
            {**chosen, question: value} if chosen[asked_by] == answer else chosen
            for chosen in combinations
            for value in (values if chosen[asked_by] == answer else [None])
        ]
    return combinations


def test_every_combination_of_the_features_renders_lint_format_and_type_clean(
    template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    typing_tools: Path,
    mypy_cache: Path,
) -> None:
    """Each feature question's every value beside every other's, on every offered Python.

    All renders are linted and formatted for their Python (ruff's target follows it); mypy
    checks each combination of the features once, the Pythons taking turns across them.
    """
    root = tmp_path_factory.mktemp("combinations")
    pythons = offered_pythons()
    features = every_combination()
    type_checked = []
    for number, (chosen, python) in enumerate(itertools.product(features, pythons)):
        destination = root / f"project-{number}"
        answers = {"project_name": f"Combination {number}", "python_version": python, **chosen}
        render(template, destination, answers)
        assert not template_debris(destination), answers
        if python == pythons[features.index(chosen) % len(pythons)]:
            type_checked.append(destination)

    projects = sorted(root.iterdir())
    assert len(projects) == len(features) * len(pythons)
    run("ruff", "check", "--no-cache", *projects, cwd=root)
    run("ruff", "format", "--no-cache", "--check", *projects, cwd=root)
    assert len(type_checked) == len(features)
    for project in type_checked:
        mypy = (typing_tools / "mypy", "--python-executable", typing_tools / "python")
        config = ("--config-file", project / "pyproject.toml", "--cache-dir", mypy_cache)
        run(*mypy, *config, project / "src", project / "tests", cwd=root)
