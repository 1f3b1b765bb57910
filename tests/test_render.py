"""Every answer set renders a tidy, lint-clean, type-clean project with only the files it needs."""

import re
import runpy
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import render
from tests.tools import package_of, run, template_debris

pytestmark = pytest.mark.render

README_MAX_LINES = 120  # one page a newcomer reads in five minutes; reference lives in docs/
AGENTS_MAX_LINES = 60  # conventions and gates only: the README holds the commands and layout
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")

EXAMPLE_FILES = (
    "api/v1/users.py",
    "api/v1/posts.py",
    "api/schemas/users.py",
    "api/schemas/posts.py",
    "db/models/user.py",
    "db/models/post.py",
)


def test_render_has_the_layered_layout(project: Path) -> None:
    package = project / "src" / package_of(project)
    expected = [
        "pyproject.toml",
        "alembic.ini",
        "README.md",
        ".gitignore",
        ".env.example",
        ".copier-answers.yml",
        "openapi.json",
        "tests/conftest.py",
    ]
    for relative in expected:
        assert (project / relative).is_file(), relative
    for relative in ("main.py", "cli.py", "api/deps.py", "api/health.py", "api/bounds.py"):
        assert (package / relative).is_file(), relative
    for relative in (
        "api/errors/handlers.py",
        "api/middleware/access_log.py",
        "api/schemas/partial.py",
    ):
        assert (package / relative).is_file(), relative
    for relative in ("core/settings.py", "db/base.py", "db/database.py", "migrations/env.py"):
        assert (package / relative).is_file(), relative


def test_render_includes_the_example_only_when_asked(project: Path) -> None:
    package = project / "src" / package_of(project)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    wanted = answers["include_example_api"]

    for relative in EXAMPLE_FILES:
        assert (package / relative).is_file() == wanted, relative
    versions = package / "migrations" / "versions"
    assert any(versions.glob("*_create_users_and_posts.py")) == wanted
    assert any(versions.glob("*_create_api_keys.py")) == (answers["auth"] == "api_key")
    assert (project / "tests" / "api" / "v1").exists() == wanted
    assert ("import User" in (package / "db" / "models" / "__init__.py").read_text()) == wanted
    assert ("email-validator" in (project / "pyproject.toml").read_text()) == wanted
    assert ('"/api/v1/users"' in (project / "openapi.json").read_text()) == wanted


def test_render_includes_jobs_only_when_asked(project: Path) -> None:
    package = project / "src" / package_of(project)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    wanted = answers["include_jobs"]

    for relative in ("jobs/queue.py", "jobs/tasks.py", "jobs/worker.py", "jobs/logs.py"):
        assert (package / relative).is_file() == wanted, relative
    versions = package / "migrations" / "versions"
    assert any(versions.glob("*_install_job_queue.py")) == wanted
    assert (project / "tests" / "jobs").exists() == wanted
    assert ("pgqueuer" in (project / "pyproject.toml").read_text()) == wanted
    assert ("*job_commands.COMMANDS" in (package / "cli.py").read_text()) == wanted
    assert ('"pgqueuer"' in (package / "migrations" / "env.py").read_text()) == wanted
    assert ("worker_concurrency" in (package / "core" / "settings.py").read_text()) == wanted


def heading_anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_render_readme_is_one_page_and_its_links_hold(project: Path) -> None:
    readme = project / "README.md"
    pages = sorted((project / "docs").glob("*.md"))
    linked_from_readme = set()

    assert len(readme.read_text().splitlines()) <= README_MAX_LINES
    for page in (readme, *pages):
        for target in MARKDOWN_LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a URL, such as uv's
            relative, _, anchor = target.partition("#")
            linked = (page.parent / relative).resolve() if relative else page
            assert linked.is_file(), f"{page.relative_to(project)} links to {target}"
            assert not anchor or anchor in heading_anchors(linked), f"{page.name}: {target}"
            if page == readme:
                linked_from_readme.add(linked)
    assert pages
    assert not {page.resolve() for page in pages} - linked_from_readme, "pages the README misses"


def test_render_leaves_no_template_syntax_or_debris(project: Path) -> None:
    assert not template_debris(project)


def test_render_config_files_parse(project: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert pyproject["project"]["name"] == answers["project_slug"]
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    assert answers["package_name"] in pyproject["project"]["scripts"]


def test_render_is_lint_clean_and_formatted(project: Path) -> None:
    run("ruff", "check", "--no-cache", ".", cwd=project)
    run("ruff", "format", "--no-cache", "--check", ".", cwd=project)


def test_render_type_checks(project: Path, typing_tools: Path, mypy_cache: Path) -> None:
    # One virtualenv has every dependency, checked once into the session's cache; mypy checks
    # each project as for its own Python version, so a version this machine lacks is still
    # checked. Run from the project's own parent, so its modules are cached under its paths.
    mypy = (typing_tools / "mypy", "--python-executable", typing_tools / "python")
    config = ("--config-file", project / "pyproject.toml", "--cache-dir", mypy_cache)
    run(*mypy, *config, project / "src", project / "tests", cwd=project.parent)


def test_render_agents_page_is_short_and_matches_the_answers(project: Path) -> None:
    agents = (project / "AGENTS.md").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert len(agents.splitlines()) <= AGENTS_MAX_LINES
    assert ("can_read" in agents) == (answers["auth"] != "none")
    assert f"uv run {answers['package_name']} new resource" in agents
    for link in MARKDOWN_LINK.findall(agents):
        assert (project / link).is_file(), link


@pytest.mark.parametrize("jobs", [False, True], ids=["no-jobs", "jobs"])
@pytest.mark.parametrize("auth", ["none", "api_key", "oidc"])
def test_example_manifest_takes_a_render_to_the_render_without_the_example(
    template: Path, tmp_path: Path, auth: str, jobs: bool
) -> None:
    """`remove resource posts users` knows every file and line of the example, for any answers.

    Its manifest's files and lines, with the two resources' own modules, are all that sets a
    render with the example apart from one without it (beside what the generator recomputes:
    the registries, openapi.json, and the revisions, which stay).
    """
    answers = {"project_name": "Example Manifest", "auth": auth, "include_jobs": jobs}
    with_example = render(template, tmp_path / "with", answers)
    without = render(template, tmp_path / "without", {**answers, "include_example_api": False})
    package = f"src/{package_of(with_example)}"
    manifest = runpy.run_path(str(with_example / package / "devtools" / "example_api.py"))
    with_files, without_files = files_of(with_example), files_of(without)
    resources = {
        f"{package}/{room}/{name}.py"
        for singular, plural in (("post", "posts"), ("user", "users"))
        for room, name in (
            ("db/models", singular),
            ("db/queries", plural),
            ("api/schemas", plural),
            ("api/v1", plural),
        )
    } | {f"tests/api/v1/test_{plural}.py" for plural in ("posts", "users")}

    assert with_files - without_files == {
        *manifest["FILES"],
        *resources,
        "tests/api/v1/__init__.py",
    }
    assert not without_files - with_files
    recomputed = {
        "openapi.json",
        f"{package}/db/models/__init__.py",
        f"{package}/api/v1/__init__.py",
    }
    differing = {
        name
        for name in with_files & without_files
        if (with_example / name).read_text() != (without / name).read_text()
    }
    assert differing - recomputed == set(manifest["EDITS"])
    for name, replacements in manifest["EDITS"].items():
        text = (with_example / name).read_text()
        for rendered, removed in replacements:
            assert text.count(rendered) == 1, (name, rendered)
            text = text.replace(rendered, removed)
        assert text == (without / name).read_text(), name


def files_of(project: Path) -> set[str]:
    """The project's files outside its migrations' versions, relative to it."""
    return {
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and "versions" not in path.relative_to(project).parts
    }
