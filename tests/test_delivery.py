"""The delivery files of every rendered project: linted, validated and consistent with the app.

Here the Dockerfile is linted by hadolint, the compose file and the workflow are validated
against their published schemas, the workflow is audited by zizmor, and all are checked against
the settings module. The image and the compose stack are built and run by tests/test_container.py.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.answers import EVERY_DEPENDENCY
from tests.tools import UV, clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.render


def settings_variables(project: Path) -> set[str]:
    """The environment variables the settings module reads (its fields, upper-cased)."""
    source = (project / "src" / package_of(project) / "core" / "settings.py").read_text()
    body = source[source.index("class Settings(") :]
    return {name.upper() for name in re.findall(r"^    (\w+): ", body, re.MULTILINE)}


def test_dockerfile_is_lint_clean_multi_stage_and_unprivileged(project: Path) -> None:
    run("hadolint", "Dockerfile", cwd=project)
    dockerfile = (project / "Dockerfile").read_text()
    stages = re.findall(r"^FROM .* AS (\w+)$", dockerfile, re.MULTILINE)
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]

    assert stages == ["build", "runtime"]
    assert "uv sync --locked" in dockerfile
    assert "uv" not in runtime.replace("uvicorn", "")  # no build tool in the final image
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "HEALTHCHECK" in runtime
    assert "/health/live" in runtime
    assert f'ENTRYPOINT ["{package_of(project)}"]' in runtime
    ignored = (project / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "secrets", "tests"} <= set(ignored)


def test_compose_file_follows_the_compose_specification(project: Path) -> None:
    run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml", cwd=project)


def test_compose_file_is_consistent_with_the_app(project: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())
    services = compose["services"]
    variables = settings_variables(project)

    for name in ("migrations", "app"):
        ours = {key for key in services[name]["environment"] if not key.startswith("OTEL_")}
        assert ours <= variables, name  # OTEL_* are OpenTelemetry's own
        assert services[name]["secrets"] == ["database_password"]
    assert services["migrations"]["command"] == ["migrate"]
    assert services["migrations"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["app"]["depends_on"] == {
        "migrations": {"condition": "service_completed_successfully"}
    }
    assert "healthcheck" in services["postgres"]
    assert services["replica"]["profiles"] == ["replica"]
    assert "DATABASE_READ_URL" in services["app"]["environment"]
    # Every named volume used is declared, every declared one used; no password as a literal.
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith(".")
    }
    assert used == set(compose["volumes"])
    assert "PASSWORD:" not in (project / "compose.yaml").read_text().replace("_FILE:", "")
    assert (project / "deploy" / "postgres-replication.sh").is_file()


def test_compose_runs_the_jobs_worker_exactly_when_the_project_has_jobs(project: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())
    services = compose["services"]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    if not answers.get("include_jobs", False):
        assert "worker" not in services
        return
    worker, app = services["worker"], services["app"]
    variables = settings_variables(project)

    # The app's image with the `worker` command (the ENTRYPOINT is the CLI, `serve` its default).
    assert worker["build"] == app["build"]
    assert worker["command"] == ["worker"]
    runtime = (project / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert runtime.rstrip().endswith(f'ENTRYPOINT ["{package_of(project)}"]\nCMD ["serve"]')
    # No HTTP: the image's health check (/health/live) is off, no port is published.
    assert worker["healthcheck"] == {"disable": True}
    assert "ports" not in worker
    # The app's database settings and password; straight to PostgreSQL (it LISTENs).
    database = {
        key: value for key, value in app["environment"].items() if key.startswith("DATABASE_")
    }
    assert database
    assert {key: worker["environment"].get(key) for key in database} == database
    assert set(worker["environment"]) <= variables, set(worker["environment"]) - variables
    assert worker["environment"].get("DATABASE_TRANSACTION_POOLER", "false") == "false"
    assert worker["environment"]["LOG_FORMAT"] == app["environment"]["LOG_FORMAT"]
    assert worker["secrets"] == app["secrets"]
    assert worker["depends_on"] == app["depends_on"]  # after the migrations, as the app
    # Running jobs finish before compose kills: longer than its 10 s default, a minute.
    grace = re.fullmatch(r"(\d+)s", worker["stop_grace_period"])
    assert grace is not None
    assert int(grace.group(1)) >= 60


def test_workflow_is_valid_audited_and_keeps_its_expressions(project: Path) -> None:
    workflow = project / ".github" / "workflows" / "ci.yml"
    run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow, cwd=project)
    run("zizmor", "--offline", "--no-progress", workflow, cwd=project)

    assert "${{ runner.os }}-${{ hashFiles('uv.lock') }}" in workflow.read_text()


def test_workflow_runs_the_documented_commands(project: Path) -> None:
    workflow: dict[str, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )
    pages = [(project / "README.md").read_text()]
    pages += [page.read_text() for page in sorted((project / "docs").glob("*.md"))]
    package = package_of(project)
    commands = [
        # "$SERVICE" is the package, read from pyproject.toml (next test); `serve` in the background
        step["run"].replace('"$SERVICE"', package).removesuffix(" > serve.log 2>&1 &")
        for step in workflow["jobs"]["check"]["steps"]
        if "uv run" in step.get("run", "")
        and runs_for(project, step)
        and "api-key create" not in step["run"]  # a key for the checks: the next test but one
        and "devtools.identity_provider" not in step["run"]  # a token for them: the test after it
    ]
    app = "--app-url http://127.0.0.1:8000"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    checks = ["sample-data", "concurrency"] if answers["include_example_api"] else []

    assert commands == [
        "uv run ruff check . && uv run ruff format --check . && uv run mypy",
        "uv run pytest",
        f"uv run {package} migrate",
        f"uv run {package} serve",
        f"uv run python -m tests.integration health {app} --wait 60",
        *[f"uv run python -m tests.integration {name} {app}" for name in checks],
    ]
    for command in commands:  # inline in the README or a docs page, or a line of a code block
        assert any(f"`{command}`" in page or f"\n{command}\n" in page for page in pages), command


def test_workflow_names_the_service_from_pyproject(project: Path, tmp_path: Path) -> None:
    workflow: dict[str, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )
    (naming,) = [
        step for step in workflow["jobs"]["check"]["steps"] if "SERVICE=" in step.get("run", "")
    ]
    github_env = tmp_path / "github_env"
    run("bash", "-c", naming["run"], cwd=project, env=clean_environment(GITHUB_ENV=str(github_env)))

    assert github_env.read_text() == f"SERVICE={package_of(project)}\n"


def test_workflow_issues_the_checks_a_key_exactly_when_the_project_has_api_keys(
    project: Path, tmp_path: Path
) -> None:
    steps = check_steps(project)
    position = {step["name"]: number for number, step in enumerate(steps) if "name" in step}
    (issuing,) = [step for step in steps if "api-key create" in step.get("run", "")]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    # Run it with a `uv` that records its arguments and prints a key, as `api-key create` does.
    key = "ak_0123456789ab_" + "s" * 43
    github_env = tmp_path / "github_env"
    script = f'printf "%s\\n" "$@" > "{tmp_path}/arguments"\necho {key}'
    environment = with_fake_uv(tmp_path, script, project, github_env)
    issued = run("bash", "-e", "-c", issuing["run"], cwd=project, env=environment)
    arguments = " ".join((tmp_path / "arguments").read_text().split())

    assert runs_for(project, issuing) == (answers["auth"] == "api_key")
    # After the migration (the keys' table), before the first check that sends the key.
    assert position["Migrate the app's database"] < position[issuing["name"]]
    assert position[issuing["name"]] < position["Load the sample data"]
    assert arguments == (
        f"run {package_of(project)} api-key create --name ci --scope read --scope write"
        " --expires-in-days 1"
    )
    assert issued.stdout == f"::add-mask::{key}\n"  # masked before anything else prints it
    assert github_env.read_text() == f"API_KEY={key}\n"


def check_steps(project: Path) -> list[dict[str, Any]]:
    """The steps of the generated workflow's `check` job, in order."""
    workflow: dict[str, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )
    steps: list[dict[str, Any]] = workflow["jobs"]["check"]["steps"]
    return steps


def with_fake_uv(tmp_path: Path, script: str, project: Path, github_env: Path) -> dict[str, str]:
    """The environment of a workflow step whose `uv` is this shell script; $SERVICE as CI sets."""
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    return clean_environment(
        PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        SERVICE=package_of(project),
        GITHUB_ENV=str(github_env),
    )


def runs_for(project: Path, step: dict[str, Any]) -> bool:
    """Whether a workflow step runs for this project: its `hashFiles(...)` guard, if any, holds.

    The guard names a file, or a glob pattern of them (`src/*/...`: the package's name varies).
    """
    guard = re.fullmatch(r"hashFiles\('([^']+)'\) != ''", step.get("if", ""))
    return guard is None or any(path.is_file() for path in project.glob(guard.group(1)))


def test_pre_commit_runs_the_same_linters(project: Path) -> None:
    config: dict[str, Any] = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]

    assert entries == ["uv run ruff check --fix", "uv run ruff format", "uv run mypy"]


def test_ci_and_image_run_the_same_python(project: Path) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    pinned = (project / ".python-version").read_text().strip()
    workflow: dict[str, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )
    setup = [
        step["with"]
        for step in workflow["jobs"]["check"]["steps"]
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    images = re.findall(r"^FROM python:(\S+)-slim AS", (project / "Dockerfile").read_text(), re.M)

    assert pinned == answers["python_version"]
    assert setup == [{"python-version-file": ".python-version"}]
    assert images == [pinned, pinned]  # build and runtime stages


def test_compose_observability_profile_receives_and_scrapes_what_the_app_sends(
    project: Path,
) -> None:
    text = (project / "compose.yaml").read_text()
    services = yaml.safe_load(text)["services"]
    app = services["app"]["environment"]
    prometheus = yaml.safe_load((project / "deploy" / "prometheus.yml").read_text())

    assert services["jaeger"]["profiles"] == services["prometheus"]["profiles"] == ["observability"]
    # Off unless asked for, as the header's command asks.
    assert app["TRACES_ENABLED"] == "${TRACES_ENABLED:-false}"
    assert app["METRICS_PORT"] == "${METRICS_PORT:-}"
    command = re.search(r"^#   (.*--profile observability.*)$", text, re.MULTILINE)
    assert command, "the header shows how to start the profile"
    assert "TRACES_ENABLED=true METRICS_PORT=9464 docker compose" in command.group(1)
    # Spans go to Jaeger's OTLP/HTTP port; Prometheus scrapes the app's METRICS_PORT.
    assert app["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    (job,) = prometheus["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["app:9464"]}]
    mount = services["prometheus"]["volumes"][0].split(":")
    assert (project / mount[0]).is_file()
    assert services["prometheus"]["command"] == [f"--config.file={mount[1]}"]


def test_compose_waits_longer_than_the_drain_before_it_kills(project: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())
    app = compose["services"]["app"]
    grace = re.fullmatch(r"(\d+)s", app["stop_grace_period"])

    assert grace is not None
    assert int(grace.group(1)) > int(app["environment"]["GRACEFUL_SHUTDOWN_SECONDS"])


def test_the_wheel_the_image_installs_leaves_the_development_tools_out(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    project = rendered("defaults")  # the same build settings for every answer
    run(UV, "build", "--wheel", "--quiet", "--out-dir", tmp_path, cwd=project)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = package_of(project)

    assert f"{package}/main.py" in names
    assert f"{package}/migrations/env.py" in names
    assert not [name for name in names if "/devtools/" in name]


def test_workflow_serves_an_issuer_and_hands_its_token_to_the_checks_when_oidc(
    project: Path, rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    steps = check_steps(project)
    position = {step["name"]: number for number, step in enumerate(steps) if "name" in step}
    (serving,) = [step for step in steps if "devtools.identity_provider" in step.get("run", "")]
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    assert runs_for(project, serving) == (answers["auth"] == "oidc")
    # Before the migration: the settings of every command need the issuer.
    assert position[serving["name"]] < position["Migrate the app's database"]
    if project != rendered(EVERY_DEPENDENCY):  # OIDC, installed with this Python: run it
        return
    # Run the step for real, with a `uv` that runs the project's own virtualenv.
    bin_dir = uv_sync(project)
    github_env = tmp_path / "github_env"
    environment = with_fake_uv(tmp_path, f'shift\nexec "{bin_dir}/$@"', project, github_env)
    step = subprocess.Popen(
        ["bash", "-e", "-c", serving["run"]],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = step.communicate(timeout=60)
        given = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
        assert set(given) == {"OIDC_ISSUER", "OIDC_AUDIENCE", "API_KEY"}
        assert output == f"::add-mask::{given['API_KEY']}\n"  # masked before anything prints it
        discovery_url = f"{given['OIDC_ISSUER']}/.well-known/openid-configuration"
        with urllib.request.urlopen(discovery_url, timeout=10) as answer:  # noqa: S310 - http
            assert json.loads(answer.read())["issuer"] == given["OIDC_ISSUER"]
    finally:
        with contextlib.suppress(ProcessLookupError):  # the issuer the step left serving
            os.killpg(step.pid, signal.SIGTERM)


def test_workflow_audits_the_locked_runtime_dependencies(rendered: Callable[[str], Path]) -> None:
    project = rendered("defaults")
    workflow: dict[Any, Any] = yaml.safe_load(
        (project / ".github" / "workflows" / "ci.yml").read_text()
    )
    export, audit = [step["run"] for step in workflow["jobs"]["audit"]["steps"][-2:]]
    uv_sync(project)
    run(*shlex.split(export.replace("uv ", f"{UV} ", 1)), cwd=project, env=clean_environment())
    listed = (project / "runtime-requirements.txt").read_text()
    # PyPI's advisory API (pip-audit's source) is not reachable here: everything but the
    # look-up runs, with --dry-run.
    assert audit.startswith("uvx pip-audit@")  # pinned, beside the project's environment
    audited = run(
        *shlex.split(audit.replace("uvx ", f"{UV} tool run ", 1)),
        "--dry-run",
        cwd=project,
        env=clean_environment(),
    )
    (project / "runtime-requirements.txt").unlink()

    assert workflow[True]["schedule"], "advisories appear without a push"  # YAML 1.1: on is True
    assert "--hash=sha256:" in listed
    assert not re.search(r"^(pytest|mypy|ruff|pip-audit)==", listed, re.M)  # runtime only
    packages = len(re.findall(r"^\S+==", listed, re.M))
    assert f"would have audited {packages} packages" in audited.stderr + audited.stdout
