"""A generated project's `python -m tests.integration` against its `serve`, on a real PostgreSQL.

The commands run are those of the generated docs/testing.md ("Integration checks"), pointed at
the port served here, so every command the page shows is proven to pass; the database is then
read directly, so the checks' own reports are not taken on trust. The API wants a key: one is
issued with the project's own `api-key create`, as CI does, and handed over in API_KEY (or
`--api-key`).
"""

import re
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.service import free_port, issue_key, migrated_and_serving, stop
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.generated

DOCUMENTED_URL = "http://127.0.0.1:8000"
THROUGHPUT = re.compile(
    r"^throughput: ([\d.]+) requests/s; latency p50 ([\d.]+) ms, p99 ([\d.]+) ms$"
)


def documented_checks(project: Path) -> list[str]:
    """The integration commands the generated docs/testing.md shows, in order."""
    page = (project / "docs" / "testing.md").read_text()
    section = page[page.index("## Integration checks") :]
    return re.findall(r"^uv run python -m tests\.integration .*$", section, re.MULTILINE)


def integration(
    tools: Path,
    project: Path,
    command: str,
    app_url: str,
    *,
    api_key: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a documented command with the project's virtualenv (as `uv run` would) against `app_url`.

    `api_key` goes in the API_KEY variable, as CI hands it over. Whatever the command prints,
    the key is not in it.
    """
    words = shlex.split(command.replace(DOCUMENTED_URL, app_url))
    assert words[:3] == ["uv", "run", "python"], command
    env = clean_environment(**({"API_KEY": api_key} if api_key else {}))
    result = run(tools / "python", *words[3:], cwd=project, env=env, check=check)
    if api_key:
        assert api_key not in result.stdout + result.stderr, command
    return result


def api_key_of(header: dict[str, str]) -> str:
    """The key a header from `issue_key` carries."""
    return header["Authorization"].removeprefix("Bearer ")


def served(postgres: Any, database: str) -> tuple[dict[str, str], str]:
    """The environment of `serve` with two workers on a new database, and the app's URL."""
    port = free_port()
    env = clean_environment(
        DATABASE_URL=postgres.create_database(database),
        PORT=str(port),
        WEB_CONCURRENCY="2",
        LOG_LEVEL="WARNING",
    )
    return env, f"http://127.0.0.1:{port}"


def test_integration_checks_pass_against_served_workers_and_fail_once_it_stops(
    rendered: Callable[[str], Path], postgres: Any, tmp_path: Path
) -> None:
    project = rendered("defaults")
    tools = uv_sync(project)
    env, app_url = served(postgres, "integration")
    health, sample_data, concurrency = documented_checks(project)
    command = str(tools / package_of(project))

    with migrated_and_serving(command, project, env, tmp_path / "serve.log") as service:
        key = api_key_of(issue_key(command, project, env, "read", "write", name="integration"))
        ready = integration(tools, project, health, app_url)  # the probes answer anyone
        refused = integration(tools, project, sample_data, app_url, check=False)  # no key
        first = integration(tools, project, sample_data, app_url, api_key=key)
        # The option, instead of the variable; never printed either.
        second = integration(tools, project, f"{sample_data} --api-key {key}", app_url)
        assert key not in second.stdout + second.stderr
        load = integration(tools, project, concurrency, app_url, api_key=key)
        rows = postgres.psql(
            "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM posts)",
            database="integration",
        )
        assert stop(service, signal.SIGTERM, timeout=30)
    stopped = integration(tools, project, concurrency, app_url, api_key=key, check=False)

    assert ready.stdout == "live: ok\nready: ok (writer: ok, reader: ok)\n"
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith(
        "sample-data: FAILED: POST /api/v1/users answered 401, expected 201 or 409"
        " (is API_KEY, or --api-key, a valid key with the scopes this check needs?): "
    ), refused.stderr
    assert (
        first.stdout == "users: 10 created, 0 already there\nposts: 30 created, 0 already there\n"
    )
    assert (
        second.stdout == "users: 0 created, 10 already there\nposts: 0 created, 30 already there\n"
    )
    lines = load.stdout.splitlines()
    assert lines[0].startswith("concurrency: 1000 requests for 250 users"), load.stdout
    assert lines[2:] == [
        "rows: 250 of 250 users went through; 125 kept, 125 deleted; 125 listed",
        "errors: 0",
        "cleaned up: 125 users deleted",
    ]
    assert rows == "10 30"  # the sample data once, and nothing of the load left behind
    figures = THROUGHPUT.match(lines[1])
    assert figures is not None, lines[1]
    requests_per_second, p50, p99 = figures.groups()
    report(
        "integration concurrency, 2 workers, 16 at a time, 1000 requests",
        float(requests_per_second),
        "requests/s",
        f"p50 {p50} ms, p99 {p99} ms",
    )
    # Against the stopped app the check fails, saying why, in one line.
    assert stopped.returncode == 1
    assert stopped.stdout == ""
    assert stopped.stderr == (
        f"concurrency: FAILED: cannot reach the app at {app_url}"
        " (ConnectError: All connection attempts failed); is it running?\n"
    )


def test_integration_cli_without_the_example_api_checks_health_only(
    rendered: Callable[[str], Path], postgres: Any, tmp_path: Path
) -> None:
    project = rendered("unusual")
    tools = uv_sync(project)
    env, app_url = served(postgres, "integration_bare")
    (health,) = documented_checks(project)
    python = tools / "python"

    usage = run(python, "-m", "tests.integration", "--help", cwd=project)
    in_environment = "ak_000000000000_the-key-in-the-environment-is-never-printed"
    health_usage = run(
        python,
        "-m",
        "tests.integration",
        "health",
        "--help",
        cwd=project,
        env=clean_environment(API_KEY=in_environment),
    )
    refused = run(python, "-m", "tests.integration", "sample-data", cwd=project, check=False)
    with migrated_and_serving(str(tools / package_of(project)), project, env, tmp_path / "log"):
        ready = integration(tools, project, health, app_url)
    down = integration(tools, project, health.replace(" --wait 60", ""), app_url, check=False)

    assert "health" in usage.stdout
    assert "sample-data" not in usage.stdout
    assert "concurrency" not in usage.stdout
    assert "--api-key KEY" in health_usage.stdout
    assert "API_KEY environment" in " ".join(health_usage.stdout.split())
    assert in_environment not in health_usage.stdout
    assert refused.returncode == 2
    assert "invalid choice: 'sample-data'" in refused.stderr
    assert ready.stdout == "live: ok\nready: ok (writer: ok, reader: ok)\n"
    assert down.returncode == 1
    assert down.stderr.startswith(f"health: FAILED: cannot reach the app at {app_url}")
