"""A served project behind a real PgBouncer in transaction mode, configured as its docs say.

PgBouncer comes from Debian (`apt-get install pgbouncer`); tests/bouncer.py starts it from the
"Behind PgBouncer" section of the generated docs/database.md, changing only ports and paths, so
that page says exactly what is tested.
"""

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.bouncer import Bouncer, bouncing, database_page
from tests.figures import report
from tests.service import PeakSessions, call, free_port, issue_key, migrate, running, stop
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.pgbouncer

SERVER_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"


@pytest.fixture(scope="module")
def project(rendered: Callable[[str], Path]) -> Path:
    """The default project, installed."""
    project = rendered("defaults")
    uv_sync(project)
    return project


@pytest.fixture(scope="module")
def bouncer(project: Path) -> Iterator[Bouncer]:
    """PostgreSQL and PgBouncer as the docs say; the role may create the suite's databases."""
    with bouncing(database_page(project)) as bouncer:
        bouncer.server.psql("ALTER ROLE app CREATEDB")  # the generated suite makes its own
        yield bouncer


def test_the_generated_suite_passes_through_pgbouncer(project: Path, bouncer: Bouncer) -> None:
    pooler = {k: v for k, v in bouncer.service_env.items() if k.startswith("DATABASE_")}
    del pooler["DATABASE_URL"], pooler["DATABASE_PASSWORD"]
    env = clean_environment(TEST_DATABASE_URL=bouncer.url("postgres"), **pooler)
    started = time.monotonic()
    result = run(
        project / ".venv" / "bin" / "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env
    )
    summary = result.stdout.strip().splitlines()[-1]
    report("the generated suite through PgBouncer 1.18", time.monotonic() - started, "s", summary)
    assert " passed" in summary, result.stdout


def test_crud_under_concurrent_load_through_pgbouncer(
    project: Path, bouncer: Bouncer, tmp_path: Path
) -> None:
    command = str(project / ".venv" / "bin" / package_of(project))
    port = free_port()
    env = clean_environment(**bouncer.service_env, PORT=str(port), WEB_CONCURRENCY="2")
    migrated = migrate(command, project, env)
    assert migrated.returncode == 0, migrated.stderr
    key = issue_key(command, project, env, "read", "write", name="pgbouncer")  # through PgBouncer
    base = f"http://127.0.0.1:{port}"
    watcher = PeakSessions(bouncer.server, SERVER_SESSIONS)
    with running(
        [command, "serve"],
        cwd=project,
        env=env,
        ready_url=f"{base}/health/ready",
        log=tmp_path / "serve.log",
    ) as service:
        watcher.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            rounds = list(pool.map(crud_rounds, [base] * CLIENTS, [key] * CLIENTS, range(CLIENTS)))
        watcher.done.set()
        watcher.join()
        assert stop(service, signal.SIGTERM)
    outcomes = sum(rounds, Counter())
    kept = int(bouncer.server.psql("SELECT count(*) FROM users", "app"))
    created = outcomes["POST 201"]
    assert set(outcomes) == {"POST 201", "GET 200", "PATCH 200", "DELETE 204", "GET 404"}, outcomes
    assert outcomes["DELETE 204"] == outcomes["GET 404"] == created  # every write landed once
    assert kept == 0, kept
    # The service's pools (2 workers x 2 roles x 10) meet PgBouncer's pool of 20.
    assert 0 < watcher.peak <= 20 + 2, watcher.peak
    report(
        "CRUD through PgBouncer 1.18, 2 workers",
        sum(outcomes.values()) / LOAD_SECONDS,
        "requests/s",
        f"{CLIENTS} clients, {created} users created, read, renamed and deleted; "
        f"peak {watcher.peak} server connections",
    )


CLIENTS, LOAD_SECONDS = 16, 4.0


def crud_rounds(base: str, key: dict[str, str], client: int) -> Counter[str]:
    """Create, read, rename, delete and miss a user, again and again for LOAD_SECONDS.

    Every request carries `key`, the header of a key to read and write.
    """
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + LOAD_SECONDS
    number = 0
    while time.monotonic() < deadline:
        number += 1
        email = f"crud-{client}-{number}@example.com"
        status, user, _ = call("POST", f"{base}/api/v1/users", {"email": email}, key)
        seen[f"POST {status}"] += 1
        if status != 201:
            continue
        item = f"{base}/api/v1/users/{user['id']}"
        seen[f"GET {call('GET', item, headers=key)[0]}"] += 1
        seen[f"PATCH {call('PATCH', item, {'full_name': 'Renamed'}, key)[0]}"] += 1
        seen[f"DELETE {call('DELETE', item, headers=key)[0]}"] += 1
        seen[f"GET {call('GET', item, headers=key)[0]}"] += 1
    return seen
