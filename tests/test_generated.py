"""Generated projects installed as a user would: their own suites pass, their service serves.

Each runs against a real PostgreSQL: the embedded server the project starts itself, or one this
test starts and hands over through TEST_DATABASE_URL / DATABASE_URL.
"""

import json
import re
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.answers import ANSWER_SETS
from tests.figures import report
from tests.local_postgres import load, require_password
from tests.pythons import allowed_by
from tests.resource_fields import resource_batches
from tests.service import (
    call,
    free_port,
    issue_key,
    leftovers,
    migrate,
    migrated_and_serving,
    processes_mentioning,
    running,
    stop,
)
from tests.tools import UV, clean_environment, package_of, python_option, run, uv_sync

pytestmark = pytest.mark.generated

PASSWORD = "hunter2-secret"  # noqa: S105 - a throwaway role on a throwaway server
WRONG = "hunter3-wrong"


def taken_names(project: Path) -> set[str]:
    """The tables and the modules of the project's rooms, which a new resource may not take."""
    package = project / "src" / package_of(project)
    rooms = [package / room for room in ("db/models", "db/queries", "api/schemas", "api/v1")]
    modules = {path.stem for room in rooms for path in room.glob("*.py")}
    tests = {path.stem.removeprefix("test_") for path in project.glob("tests/api/v1/*.py")}
    tables = set(
        re.findall(
            r'__tablename__ = "(\w+)"',
            "".join(path.read_text() for path in (package / "db" / "models").glob("*.py")),
        )
    )
    return modules | tests | tables


def run_suite(project: Path, *options: str, python: Path | None = None, **environment: str) -> str:
    """Run the generated project's own test suite as its README says; return its summary."""
    venv = uv_sync(project, python).parent
    started = time.perf_counter()
    command = (UV, "run", *python_option(python), "pytest", "-q", *options)
    env = clean_environment(UV_PROJECT_ENVIRONMENT=str(venv), **environment)
    result = run(*command, cwd=project, env=env)
    elapsed = time.perf_counter() - started
    summary = result.stdout.strip().splitlines()[-1]
    report(
        f"generated suite of {project.parent.name} on {python or 'its .python-version'}",
        elapsed,
        "s wall",
        " ".join((summary, *options)),
    )
    assert " passed" in summary, summary
    assert "skipped" not in summary, summary
    assert "failed" not in summary, summary
    return summary


@settings(
    max_examples=1,  # one drawn batch a run: each costs an install, lint and a suite
    deadline=None,
    phases=[Phase.generate],  # no shrinking: the failing batch is printed as it was
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_suite_passes_in_parallel_workers_on_a_given_url(
    fresh_project: Callable[[str], Path], postgres: Any, data: st.DataObject
) -> None:
    # Without the example API, with jobs, on the oldest Python: resources drawn by hypothesis
    # (the first hour makes the README's and every field type in projects with the example)
    # join the suite.
    project = fresh_project("unusual")
    oldest = next(iter(allowed_by(ANSWER_SETS["unusual"]).values()))
    command = uv_sync(project, oldest) / package_of(project)
    venv = clean_environment(UV_PROJECT_ENVIRONMENT=str(command.parent.parent))
    for resource in data.draw(resource_batches(taken_names(project)), label="resources"):
        run(command, "new", "resource", *resource, cwd=project, env=venv)
    for check in (("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)):
        run(command.parent / check[0], *check[1:], cwd=project, env=venv)
    run_suite(project, "-n", "2", python=oldest, TEST_DATABASE_URL=postgres.url)

    databases = postgres.psql("SELECT datname FROM pg_database WHERE datname LIKE 'test_%'")
    assert databases == "", "the workers left databases behind"


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A server for one test, whose authentication rules it may change without touching others."""
    with load().LocalPostgres() as server:
        yield server


def test_generated_service_migrates_and_serves_crud_over_http(
    rendered: Callable[[str], Path], own_postgres: Any, tmp_path: Path
) -> None:
    project = rendered("defaults")
    command = str(uv_sync(project) / package_of(project))
    own_postgres.create_database("crud")
    url = require_password(own_postgres, "crud", role="crud_owner", password=PASSWORD)
    port = free_port()
    env = clean_environment(
        DATABASE_URL=url, PORT=str(port), DATABASE_ECHO="true", LOG_FORMAT="json"
    )
    base = f"http://127.0.0.1:{port}"
    request_id = uuid.uuid4().hex
    secret_headers = {"X-Request-ID": request_id, "Authorization": "Bearer t0ken-secret"}

    # The server checks the password: a wrong one is refused, and not echoed in the error.
    refused = migrate(command, project, {**env, "DATABASE_URL": url.replace(PASSWORD, WRONG)})
    assert refused.returncode != 0
    assert 'password authentication failed for user "crud_owner"' in refused.stderr
    assert WRONG not in refused.stdout + refused.stderr

    with migrated_and_serving(command, project, env, tmp_path / "serve.log") as process:
        ada = {"email": "ada@example.com", "full_name": "Ada"}
        # API keys by default: a write without one, or with a made-up one, changes nothing.
        unknown, problem, challenge = call("POST", f"{base}/api/v1/users", ada, secret_headers)
        assert (unknown, challenge["www-authenticate"]) == (401, 'Bearer error="invalid_token"')
        assert problem["request_id"] == request_id
        assert call("POST", f"{base}/api/v1/users", ada)[0] == 401
        reader = issue_key(command, project, env, "read", name="dashboard")
        assert call("POST", f"{base}/api/v1/users", ada, reader)[0] == 403
        key = issue_key(command, project, env, "read", "write", name="crud")

        status, user, headers = call(
            "POST", f"{base}/api/v1/users", ada, {**key, "X-Request-ID": request_id}
        )
        assert status == 201
        assert headers["x-request-id"] == request_id
        assert headers["location"] == f"/api/v1/users/{user['id']}"
        assert call("GET", f"{base}{headers['location']}", headers=reader)[1] == user
        assert call("GET", f"{base}/api/v1/users", headers=key)[1] == [user]
        item = f"{base}/api/v1/users/{user['id']}"
        status, updated, _ = call("PATCH", item, {"full_name": "A"}, key)
        assert (status, updated["full_name"]) == (200, "A")
        assert call("DELETE", item, headers=key)[0] == 204
        assert call("GET", item, headers=key)[0] == 404

        assert stop(process, signal.SIGTERM)
        assert not leftovers(process)

    log = (tmp_path / "serve.log").read_text()
    lines = [json.loads(line) for line in log.splitlines()]  # every line is JSON
    assert any(line["message"] == "Application shutdown complete." for line in lines)
    of_request = [line for line in lines if line["request_id"] == request_id]
    # The SQL the request ran and its access line all carry its id.
    assert any("INSERT INTO users" in line["message"] for line in of_request)
    assert of_request[-1]["name"] == "access"
    assert of_request[-1]["message"].startswith("POST /api/v1/users 201 ")
    assert any(line["message"].startswith("GET /api/v1/users/{user_id} 200") for line in lines)
    assert PASSWORD not in log  # neither the database password the service logged in with...
    # ...nor an Authorization header, made up or real, ever reaches the log.
    assert "t0ken-secret" not in log
    assert key["Authorization"].removeprefix("Bearer ") not in log
    assert reader["Authorization"].removeprefix("Bearer ") not in log
    assert own_postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'crud'") == "0"


def test_generated_dev_runs_on_its_own_postgres_and_stops_it(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    project = rendered("unusual")
    command = str(uv_sync(project) / package_of(project))
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    before = set(processes_mentioning("postgres -D"))
    with running(
        [command, "dev"],
        cwd=project,
        env=clean_environment(PORT=str(port)),
        ready_url=f"{base}/health/ready",
        log=tmp_path / "dev.log",
    ) as process:
        assert call("GET", f"{base}/api/v1/users")[0] == 404  # no example API in this project
        started = set(processes_mentioning("postgres -D")) - before
        assert stop(process, signal.SIGINT)
        assert not leftovers(process)

    assert len(started) == 1, started
    log = (tmp_path / "dev.log").read_text()
    assert "Local PostgreSQL (started for this command): DATABASE_URL=postgresql://" in log
    assert "Development API key" in log  # the project has API keys: `dev` hands one out
    assert (project / ".local" / "credential").read_text().strip() not in log
    assert not started & set(processes_mentioning("postgres -D")), "dev left PostgreSQL running"


def test_generated_dev_of_an_oidc_project_starts_a_local_issuer_and_keeps_a_token(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    project = rendered("identity")
    command = str(uv_sync(project) / package_of(project))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token_file = project / ".local" / "credential"
    token_file.unlink(missing_ok=True)

    with running(
        [command, "dev"],
        cwd=project,
        env=clean_environment(PORT=str(port)),
        ready_url=f"{base}/health/ready",
        log=tmp_path / "dev.log",
    ) as process:
        token = token_file.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert call("GET", f"{base}/api/v1/users", headers=headers)[:2] == (200, [])
        assert call("GET", f"{base}/api/v1/users")[0] == 401
        assert stop(process, signal.SIGINT)
        assert not leftovers(process)

    log = (tmp_path / "dev.log").read_text()
    assert "Local OIDC issuer: OIDC_ISSUER=http://127.0.0.1:" in log
    assert token not in log  # kept in its file, never printed
    assert token_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "DATABASE_URL: Field required"),
        ("mysql://app@db/app", "DATABASE_URL: Value error, expected a postgresql:// URL"),
    ],
)
def test_generated_serve_refuses_bad_settings_in_one_line(
    rendered: Callable[[str], Path], url: str | None, message: str
) -> None:
    project = rendered("defaults")
    command = uv_sync(project) / package_of(project)
    # In production: on a developer's machine, no DATABASE_URL means the local database.
    env = clean_environment(ENVIRONMENT="production", **({"DATABASE_URL": url} if url else {}))

    result = subprocess.run(
        [command, "serve"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_docs_jobs_commands_run_list_and_requeue_jobs(
    rendered: Callable[[str], Path], postgres: Any
) -> None:
    project = rendered("identity")  # jobs and the example's welcome task
    package = package_of(project)
    page = (project / "docs" / "jobs.md").read_text()
    worker, failed, requeue = re.findall(rf"^uv run {package} (?:worker|jobs).*$", page, re.M)
    bin_dir = uv_sync(project)
    url = postgres.create_database("docs_jobs")
    env = clean_environment(
        DATABASE_URL=url, OIDC_ISSUER="https://issuer.invalid", OIDC_AUDIENCE="jobs"
    )
    run(bin_dir / package, "migrate", cwd=project, env=env)
    # A job held as failed, as a worker leaves one after its last attempt.
    held = run(bin_dir / "python", "-c", HOLD_A_JOB, url, cwd=project, env=env).stdout.strip()

    def documented_words(line: str, **values: str) -> list[str]:
        words = shlex.split(line)
        assert words[:3] == ["uv", "run", package], line
        return [str(bin_dir / package), *(values.get(word, word) for word in words[3:])]

    listing = run(*documented_words(failed), cwd=project, env=env).stdout
    assert re.search(rf"^{held}\s+welcome_user\s+5\s", listing, re.MULTILINE), listing
    run(*documented_words(requeue, ID=held), cwd=project, env=env)
    assert held not in run(*documented_words(failed), cwd=project, env=env).stdout

    # The worker runs the requeued job (its user is gone: a line says so) and stops on SIGTERM.
    process = subprocess.Popen(
        documented_words(worker), cwd=project, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and run(
                bin_dir / "python", "-c", COUNT_QUEUED, url, cwd=project, env=env
            ).stdout.strip()
            != "0"
        ):
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    lines = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    (welcome,) = [line for line in lines if "before their welcome" in line["message"]]
    assert welcome["job_id"] == held


# Scripts run with the project's Python: one row held as failed (its id printed), and the
# number of jobs still queued or running.
HOLD_A_JOB = """
import asyncio, sys, asyncpg
async def main():
    connection = await asyncpg.connect(sys.argv[1])
    print(await connection.fetchval(
        "INSERT INTO pgqueuer (priority, entrypoint, status, payload, attempts)"
        " VALUES (0, 'welcome_user', 'failed', '{\\"user_id\\": 404}', 4) RETURNING id"))
    await connection.close()
asyncio.run(main())
"""
COUNT_QUEUED = """
import asyncio, sys, asyncpg
async def main():
    connection = await asyncpg.connect(sys.argv[1])
    print(await connection.fetchval("SELECT count(*) FROM pgqueuer WHERE status <> 'failed'"))
    await connection.close()
asyncio.run(main())
"""


def test_generated_docs_api_key_commands_issue_list_and_revoke_keys(
    rendered: Callable[[str], Path], postgres: Any
) -> None:
    project = rendered("defaults")
    package = package_of(project)
    page = (project / "docs" / "authentication.md").read_text()
    create, listing, revoke = re.findall(rf"^uv run {package} api-key .*$", page, re.MULTILINE)
    bin_dir = uv_sync(project)
    env = clean_environment(DATABASE_URL=postgres.create_database("docs_keys"))
    run(bin_dir / package, "migrate", cwd=project, env=env)

    def documented_command(line: str, **values: str) -> subprocess.CompletedProcess[str]:
        """Run a documented line with the project's virtualenv, as `uv run` would."""
        words = shlex.split(line)
        assert words[:3] == ["uv", "run", package], line
        words = [values.get(word, word) for word in words[3:]]
        return run(bin_dir / package, *words, cwd=project, env=env)

    key = documented_command(create).stdout.strip()
    lookup = key.split("_")[1]
    assert re.fullmatch(r"ak_[0-9a-f]{12}_[\w-]{43}", key), "create prints the key alone"
    assert re.search(
        rf"^{lookup}\s+billing-ci\s+read,write\s.*\sactive$",
        documented_command(listing).stdout,
        re.MULTILINE,
    )
    documented_command(revoke, LOOKUP=lookup)
    assert documented_command(listing).stdout.rstrip().endswith("revoked")
    assert key.split("_", 2)[2] not in documented_command(listing).stdout  # the secret, shown once
