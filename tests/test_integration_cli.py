"""A generated project's `python -m tests.integration` against its `serve`, on a real PostgreSQL.

The commands run are the README's ("Integration checks"), pointed at the port served here, so
every command the README shows is proven to pass; the database is then read directly, so the
checks' own reports are not taken on trust.
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
from tests.service import free_port, migrated_and_serving, stop
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.generated

README_URL = "http://127.0.0.1:8000"
THROUGHPUT = re.compile(
    r"^throughput: ([\d.]+) requests/s; latency p50 ([\d.]+) ms, p99 ([\d.]+) ms$"
)


def readme_checks(project: Path) -> list[str]:
    """The integration commands the README shows, in order."""
    readme = (project / "README.md").read_text()
    section = readme[readme.index("## Integration checks") : readme.index("## Bringing your own")]
    return re.findall(r"^uv run python -m tests\.integration .*$", section, re.MULTILINE)


def integration(
    tools: Path, project: Path, command: str, app_url: str, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a README command with the project's virtualenv (as `uv run` would) against `app_url`."""
    words = shlex.split(command.replace(README_URL, app_url))
    assert words[:3] == ["uv", "run", "python"], command
    return run(tools / "python", *words[3:], cwd=project, env=clean_environment(), check=check)


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
    health, sample_data, concurrency = readme_checks(project)
    command = str(tools / package_of(project))

    with migrated_and_serving(command, project, env, tmp_path / "serve.log") as service:
        ready = integration(tools, project, health, app_url)
        first = integration(tools, project, sample_data, app_url)
        second = integration(tools, project, sample_data, app_url)
        load = integration(tools, project, concurrency, app_url)
        rows = postgres.psql(
            "SELECT (SELECT count(*) FROM users) || ' ' || (SELECT count(*) FROM posts)",
            database="integration",
        )
        assert stop(service, signal.SIGTERM, timeout=30)
    stopped = integration(tools, project, concurrency, app_url, check=False)

    assert ready.stdout == "live: ok\nready: ok (writer: ok, reader: ok)\n"
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
    (health,) = readme_checks(project)
    python = tools / "python"

    usage = run(python, "-m", "tests.integration", "--help", cwd=project)
    refused = run(python, "-m", "tests.integration", "sample-data", cwd=project, check=False)
    with migrated_and_serving(str(tools / package_of(project)), project, env, tmp_path / "log"):
        ready = integration(tools, project, health, app_url)
    down = integration(tools, project, health.replace(" --wait 60", ""), app_url, check=False)

    assert "health" in usage.stdout
    assert "sample-data" not in usage.stdout
    assert "concurrency" not in usage.stdout
    assert refused.returncode == 2
    assert "invalid choice: 'sample-data'" in refused.stderr
    assert ready.stdout == "live: ok\nready: ok (writer: ok, reader: ok)\n"
    assert down.returncode == 1
    assert down.stderr.startswith(f"health: FAILED: cannot reach the app at {app_url}")
