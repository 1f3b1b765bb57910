"""A generated service on a real primary and a streaming replica, driven over HTTP.

Writes land on the primary, reads are served by the replica, the reader refuses writes, and
`/health/ready` follows the replica down and back up without restarting the service.
"""

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.local_postgres import load
from tests.service import call, free_port, issue_key, leftovers, migrated_and_serving, stop
from tests.tools import clean_environment, run, uv_sync

pytestmark = pytest.mark.generated

# How long the service trusts a key it checked: the replica's outage below outlasts it, so the
# writes in it are authenticated afresh.
KEY_CACHE_SECONDS = 1.0
READER_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'demo_service-reader'"
)
APP_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'demo_service-%'"

WRITE_THROUGH_THE_READER = """
import asyncio
from sqlalchemy import text
from demo_service.core.settings import Settings
from demo_service.db.database import Database

async def main() -> None:
    database = Database.from_settings(Settings())
    try:
        in_recovery = (await database.read(text("SELECT pg_is_in_recovery()"))).scalar()
        print("reader in recovery:", in_recovery)
        await database.read(text("DELETE FROM users"))
    except Exception as error:
        print("refused:", type(error.__cause__.__cause__).__name__)
    finally:
        await database.dispose()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A primary and a streaming replica of it, each on its own free port."""
    local_postgres = load()
    # Explicit data folders, kept across a stop, so the servers can be restarted.
    with local_postgres.LocalPostgres(tmp_path_factory.mktemp("primary") / "data") as primary:
        replica = local_postgres.LocalPostgres.replica_of(
            primary, data_dir=tmp_path_factory.mktemp("replica") / "data"
        )
        try:
            primary.create_database("app")
            replica.start()
            yield primary, replica
        finally:
            replica.stop()


def eventually(check: Callable[[], bool], seconds: float = 30) -> bool:
    """Poll `check` until it holds or the time is up; return its last answer."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_topology_writes_go_to_the_primary_and_reads_to_the_replica(
    rendered: Callable[[str], Path], topology: tuple[Any, Any], tmp_path: Path
) -> None:
    primary, replica = topology
    project = rendered("defaults")
    bin_dir = uv_sync(project)
    command = str(bin_dir / "demo_service")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_environment(
        DATABASE_URL=primary.url.rsplit("/", 1)[0] + "/app",
        DATABASE_READ_URL=replica.url.rsplit("/", 1)[0] + "/app",
        PORT=str(port),
        API_KEY_CACHE_SECONDS=str(KEY_CACHE_SECONDS),
    )
    with migrated_and_serving(command, project, env, tmp_path / "serve.log") as service:
        key = issue_key(command, project, env, "read", "write", name="topology")
        # Issued on the primary, checked on the replica: usable once the replica replayed it.
        assert eventually(lambda: call("GET", f"{base}/api/v1/users", headers=key)[0] == 200)
        status, user, _ = call(
            "POST", f"{base}/api/v1/users", {"email": "r@x.io", "full_name": "R"}, key
        )
        assert status == 201
        assert primary.psql("SELECT email FROM users", database="app") == "r@x.io"

        # Replication is asynchronous: the replica serves the row once it has replayed it.
        item = f"{base}/api/v1/users/{user['id']}"
        assert eventually(lambda: call("GET", item, headers=key)[0] == 200)
        assert int(replica.psql(READER_SESSIONS)) >= 1
        assert int(primary.psql(READER_SESSIONS)) == 0

        refused = run(bin_dir / "python", "-c", WRITE_THROUGH_THE_READER, cwd=project, env=env)
        assert "reader in recovery: True" in refused.stdout
        assert "refused: ReadOnlySQLTransactionError" in refused.stdout

        replica.stop()
        status, health, _ = call("GET", f"{base}/health/ready")
        # A replica outage stays in rotation: pulling every instance would stop writes too.
        assert status == 200
        assert health["status"] == "degraded"
        assert health["checks"]["writer"] == "ok"
        assert health["checks"]["reader"] != "ok"
        time.sleep(KEY_CACHE_SECONDS + 0.5)  # the key's last check is stale: it is checked again
        assert call("POST", f"{base}/api/v1/users", {"email": "w@x.io"}, key)[0] == 201

        replica.start()
        assert eventually(lambda: call("GET", f"{base}/health/ready")[1]["status"] == "ok")
        # The reader's pool replaced the connections the replica closed: no request fails.
        assert call("GET", item, headers=key)[0] == 200

        primary_port = primary.port
        primary.stop()
        primary.start()  # a restart of the primary: the first request after it succeeds
        assert primary.port == primary_port
        status, _, _ = call(
            "POST", f"{base}/api/v1/users", {"email": "s@x.io", "full_name": "S"}, key
        )
        assert status == 201
        assert call("GET", f"{base}/health/ready")[0] == 200

        assert stop(service, signal.SIGTERM)
        assert not leftovers(service)

    assert primary.psql(APP_SESSIONS) == "0"
    assert replica.psql(APP_SESSIONS) == "0"
