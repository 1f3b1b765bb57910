"""`<package> serve` with several workers under load: no errors, bounded pools, clean stop."""

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.load import drive, reads_and_writes
from tests.service import (
    PeakSessions,
    call,
    free_port,
    issue_key,
    leftovers,
    migrated_and_serving,
    stop,
)
from tests.tools import clean_environment, uv_sync

pytestmark = pytest.mark.generated

WORKERS, POOL_SIZE, MAX_OVERFLOW = 2, 3, 2
APP_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'demo_service-%'"


def test_serve_workers_under_load_stay_within_their_pools_and_stop_cleanly(
    rendered: Callable[[str], Path], postgres: Any, tmp_path: Path
) -> None:
    project = rendered("defaults")
    command = str(uv_sync(project) / "demo_service")
    port = free_port()
    env = clean_environment(
        DATABASE_URL=postgres.create_database("load"),
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        DATABASE_POOL_SIZE=str(POOL_SIZE),
        DATABASE_MAX_OVERFLOW=str(MAX_OVERFLOW),
        DATABASE_POOL_TIMEOUT="30",
        LOG_LEVEL="WARNING",
        GRACEFUL_SHUTDOWN_SECONDS="10",
    )
    base = f"http://127.0.0.1:{port}"
    with migrated_and_serving(command, project, env, tmp_path / "serve.log") as service:
        key = issue_key(command, project, env, "read", "write", name="load")
        first = {"email": "u@x.io", "full_name": "U"}
        _, user, _ = call("POST", f"{base}/api/v1/users", first, key)
        watcher = PeakSessions(postgres, APP_SESSIONS)
        watcher.start()
        outcomes = asyncio.run(
            drive(port, 100, 4.0, reads_and_writes(f"/api/v1/users/{user['id']}"), key)
        )
        watcher.done.set()
        watcher.join()

        assert stop(service, signal.SIGTERM, timeout=15)
        assert not leftovers(service)

    served = outcomes["200"] + outcomes["201"]
    report(
        f"serve, {WORKERS} workers, 100 connections, 4 s",
        served / 4,
        "requests/s",
        f"{dict(outcomes)}; peak {watcher.peak} database sessions",
    )
    assert served > 0, outcomes  # throughput is a figure (above), never a threshold
    assert set(outcomes) <= {"200", "201"}, outcomes  # no 5xx, no socket or connect error
    # Each worker has a writer pool and a reader pool, and one probe connection for each.
    assert 0 < watcher.peak <= WORKERS * 2 * (POOL_SIZE + MAX_OVERFLOW + 1), watcher.peak
    assert postgres.psql(APP_SESSIONS) == "0"
