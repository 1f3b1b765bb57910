"""Faults under load: a served default project (2 workers) while its database misbehaves.

Each test drives a bounded load and injects one fault: a restart of PostgreSQL, terminated
backends, a slow statement, a held lock, a database that is down at start-up, SIGTERM with
requests in flight, two migrations at once. Failures must be 503/504 problems inside the fault's
window, never a 500 or a dropped connection, and the service must heal by itself. The figures
(failed requests, the outage window, the time to recover) are printed at the end of the run.
"""

import asyncio
import http.client
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.load import Load, Request, run_load
from tests.local_postgres import load as postgres_launcher
from tests.service import (
    call,
    free_port,
    issue_key,
    launched,
    leftovers,
    migrate,
    running,
    stop,
    wait_until_ready,
)
from tests.tools import clean_environment, package_of, uv_sync

pytestmark = pytest.mark.generated

WORKERS, POOL_SIZE, CONNECTIONS = 2, 5, 32
STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, POOL_TIMEOUT = 1500, 800, 5.0
MARGIN = 0.5  # seconds a problem may take past the timeout that caused it
GRACE = 10
APP_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{}-%'"
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE application_name LIKE '{}-%'"
)
# A statement slow on demand: inserting a user whose email starts with "slow" sleeps.
SLOW_INSERTS = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email LIKE 'slow%' THEN PERFORM pg_sleep(split_part(NEW.email, '-', 2)::float); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""


@dataclass
class Site:
    """A served project and the PostgreSQL server it runs on (this module's own: it restarts)."""

    command: str
    project: Path
    server: Any
    env: dict[str, str]
    log: Path
    key: dict[str, str]  # the header of a key to read and write, from the project's CLI

    @property
    def port(self) -> int:
        """The service's port."""
        return int(self.env["PORT"])

    def url(self, path: str) -> str:
        """An absolute URL of the service."""
        return f"http://127.0.0.1:{self.port}{path}"

    def sessions(self) -> int:
        """The service's connections to the database now."""
        return int(self.server.psql(APP_SESSIONS.format(package_of(self.project)), "faults"))


@pytest.fixture(scope="module")
def site(
    rendered: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The default project, migrated, on a PostgreSQL of its own; served by each test.

    A key to read and write is issued once, with the project's CLI, as a client would get one.
    """
    project = rendered("defaults")
    command = str(uv_sync(project) / package_of(project))
    folder = tmp_path_factory.mktemp("faults")
    with postgres_launcher().LocalPostgres(folder / "data") as server:
        env = clean_environment(
            DATABASE_URL=server.create_database("faults"),
            PORT=str(free_port()),
            WEB_CONCURRENCY=str(WORKERS),
            DATABASE_POOL_SIZE=str(POOL_SIZE),
            DATABASE_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
            DATABASE_LOCK_TIMEOUT_MS=str(LOCK_TIMEOUT_MS),
            DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT),
            GRACEFUL_SHUTDOWN_SECONDS=str(GRACE),
        )
        assert migrate(command, project, env).returncode == 0
        server.psql(SLOW_INSERTS, "faults")
        key = issue_key(command, project, env, "read", "write", name="faults")
        yield Site(command, project, server, env, folder / "serve.log", key)


@contextmanager
def serving(site: Site, **settings: str) -> Iterator[subprocess.Popen[str]]:
    """Serve the project (with these settings too) until the block ends; stop it with SIGTERM."""
    ready = site.url("/health/ready")
    env = {**site.env, **settings}
    with running(
        [site.command, "serve"], cwd=site.project, env=env, ready_url=ready, log=site.log
    ) as service:
        yield service
        assert stop(service, signal.SIGTERM, timeout=GRACE + 5)


def mixed(prefix: str) -> Callable[[], Request]:
    """Reads of the first user and creations of new ones, one after the other."""
    numbers = iter(range(10**9))

    def next_request() -> Request:
        number = next(numbers)
        if number % 2:
            return "GET", "/api/v1/users/1", None
        return "POST", "/api/v1/users", {"email": f"{prefix}{number}@example.com"}

    return next_request


def in_background(site: Site, seconds: float, prefix: str) -> "Future[Load]":
    """Start a bounded load in a thread of its own; the future holds what it saw."""
    executor = ThreadPoolExecutor(1)
    load = run_load(site.port, CONNECTIONS, seconds, mixed(prefix), site.key)
    future = executor.submit(asyncio.run, load)
    executor.shutdown(wait=False)
    return future


def ensure_first_user(site: Site) -> None:
    """The load reads user 1: make sure it exists."""
    status, _, _ = call("GET", site.url("/api/v1/users/1"), headers=site.key)
    if status == 404:
        first = {"email": "first@example.com"}
        status, _, _ = call("POST", site.url("/api/v1/users"), first, site.key)
        assert status == 201


def only_unavailable(load: Load) -> None:
    """Every failure is a 503 problem: never a 500, a 504 or a connection the service dropped."""
    assert {outcome.result for outcome in load.failures()} <= {"503"}, load.counts()


def log_lines(site: Site, text: str) -> list[str]:
    """The lines of the service's log that contain `text`."""
    return [line for line in site.log.read_text().splitlines() if text in line]


def test_a_database_restart_fails_only_the_requests_inside_the_outage(site: Site) -> None:
    with serving(site):
        ensure_first_user(site)
        future = in_background(site, 6.0, "restart")
        time.sleep(2.0)
        down = time.monotonic()
        site.server.stop()  # a fast shutdown, as `pg_ctl restart -m fast`
        site.server.start()  # on the same port
        up = time.monotonic()
        load = future.result()
        ready = call("GET", site.url("/health/ready"))[0]

    only_unavailable(load)
    failures = load.failures()
    # A request that failed was sent before the server accepted connections again.
    assert all(outcome.started < up for outcome in failures), [
        o for o in failures if o.started >= up
    ]
    served_after = [o for o in load.outcomes if o.started >= up and o.result.startswith("2")]
    assert served_after, load.counts()
    recovery = min(o.ended for o in served_after) - up
    assert ready == 200
    assert len(log_lines(site, "failed: ")) == len(failures)  # one line each
    assert not log_lines(site, "Traceback")
    report(
        "restart under load: failed requests",
        len(failures),
        "requests",
        f"outage {up - down:.2f} s, first success {recovery:.3f} s after it accepted "
        f"connections; {dict(load.counts())}",
    )


def test_terminated_backends_fail_only_the_requests_they_were_serving(site: Site) -> None:
    with serving(site):
        ensure_first_user(site)
        future = in_background(site, 5.0, "terminated")
        time.sleep(2.0)
        killed_at = time.monotonic()
        package = package_of(site.project)
        terminated = site.server.psql(TERMINATE.format(package), "faults")
        load = future.result()

    only_unavailable(load)
    failures = load.failures()
    # Only requests in flight when their backend died fail; a broken connection is never
    # handed out again.
    assert len(failures) <= int(terminated), (terminated, load.counts())
    assert all(o.started < killed_at + 0.2 for o in failures), failures
    assert not log_lines(site, "another operation is in progress")
    report(
        "terminated backends under load: failed requests",
        len(failures),
        "requests",
        f"{terminated} backends terminated; {dict(load.counts())}",
    )


def test_a_slow_statement_answers_504_within_its_timeout_and_its_connection_serves_again(
    site: Site,
) -> None:
    with serving(site):
        ensure_first_user(site)
        started = time.monotonic()
        alone = call("POST", site.url("/api/v1/users"), {"email": "slow-5-alone@x.io"}, site.key)
        took = time.monotonic() - started
        future = in_background(site, 5.0, "beside-slow")
        time.sleep(1.0)
        slow = POOL_SIZE * WORKERS  # as many as both workers' writer pools hold
        with ThreadPoolExecutor(slow) as pool:
            answers = list(pool.map(create_slowly_for(5), [site] * slow, range(slow)))
        after_slow = {"email": "after-slow@example.com"}
        after = call("POST", site.url("/api/v1/users"), after_slow, site.key)
        load = future.result()

    assert alone[0] == 504
    assert alone[1]["status"] == 504
    assert took < STATEMENT_TIMEOUT_MS / 1000 + MARGIN, took
    assert [status for status, _, _ in answers] == [504] * slow
    assert after[0] == 201  # the connections the timeouts hit serve again
    only_unavailable(load)  # queued past the pool timeout at worst
    report(
        "a slow statement (5 s, statement timeout 1.5 s)",
        took,
        "s to its 504",
        f"then {slow} at once under load: all 504; beside them {dict(load.counts())}",
    )


def test_a_held_lock_answers_503_within_the_lock_timeout_and_readiness_does_not_queue(
    site: Site,
) -> None:
    with serving(site):
        ensure_first_user(site)
        holder = subprocess.Popen(
            [
                str(postgres_launcher().find_bin_dir() / "psql"),
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(site.server.port),
                "-U",
                "postgres",
                "-d",
                "faults",
                "-c",
                "BEGIN; LOCK TABLE users; SELECT pg_sleep(4); COMMIT;",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            future = in_background(site, 3.0, "locked")
            time.sleep(1.0)  # every connection of both pools now waits on the lock
            probes = []
            for _ in range(5):
                started = time.monotonic()
                status, body, _ = call("GET", site.url("/health/ready"))
                probes.append((status, time.monotonic() - started, body))
            load = future.result()
        finally:
            holder.wait()
        after = call("GET", site.url("/api/v1/users/1"), headers=site.key)[0]

    assert all(status == 200 for status, _, _ in probes), probes
    slowest = max(took for _, took, _ in probes)
    assert slowest < 0.5, probes
    only_unavailable(load)
    assert load.failures(), load.counts()  # the lock outlasted the lock timeout
    waits = sorted(o.ended - o.started for o in load.failures())
    # The first in line waited the lock timeout; the rest queued for a turn before that.
    assert LOCK_TIMEOUT_MS / 1000 <= waits[0] < LOCK_TIMEOUT_MS / 1000 + MARGIN, waits
    assert waits[-1] < POOL_TIMEOUT + LOCK_TIMEOUT_MS / 1000 + MARGIN, waits
    assert after == 200
    report(
        "a held lock under load: readiness",
        slowest,
        "s at most",
        f"503s after {waits[0]:.2f}-{waits[-1]:.2f} s (lock timeout 0.8 s, queued for a turn "
        f"at most {POOL_TIMEOUT:g} s); {dict(load.counts())}",
    )


def test_the_service_starts_while_the_database_is_down_and_becomes_ready_by_itself(
    site: Site,
) -> None:
    site.server.stop()
    try:
        with launch(site) as service:
            wait_until_ready(site.url("/health/live"), service)
            status, body, _ = call("GET", site.url("/health/ready"))
            site.server.start()
            up = time.monotonic()
            while (ready := call("GET", site.url("/health/ready")))[0] != 200:
                assert time.monotonic() < up + 10, ready
                time.sleep(0.05)
            became_ready = time.monotonic() - up
            assert stop(service, signal.SIGTERM, timeout=GRACE + 5)
    finally:
        site.server.start()  # for the next test, whatever happened

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["writer"] == "unavailable (ConnectionRefusedError)", body
    report("ready after the database came up", became_ready, "s", "live all along; no restart")


def test_sigterm_stops_readiness_lets_requests_in_flight_finish_and_closes_every_connection(
    site: Site,
) -> None:
    with launch(site) as service:
        wait_until_ready(site.url("/health/ready"), service)
        in_flight = 6
        with ThreadPoolExecutor(in_flight) as pool:
            answers = [pool.submit(create_slowly_for(1.0), site, n) for n in range(in_flight)]
            time.sleep(0.3)  # every request is now inside its slow insert
            stopping = time.monotonic()
            service.send_signal(signal.SIGTERM)
            probes = probe_readiness(site, seconds=1.5)
            statuses = [answer.result()[0] for answer in answers]
        exit_status = service.wait(timeout=GRACE + 5)
        stopped = time.monotonic() - stopping

    not_ready = [at for at, answer in probes if answer != 200]
    assert not_ready, probes
    assert all(answer != 200 for at, answer in probes if at >= not_ready[0]), probes
    assert not_ready[0] - stopping < 1.0, probes  # uvicorn's supervisor looks every 0.5 s
    assert statuses == [201] * in_flight
    assert exit_status in (0, -signal.SIGTERM)
    assert stopped < GRACE
    assert site.sessions() == 0
    assert not leftovers(service)
    report(
        "SIGTERM with 6 requests in flight",
        stopped,
        "s to exit",
        f"readiness not 200 after {not_ready[0] - stopping:.2f} s; all 6 answered 201; "
        "0 connections left",
    )


def launch(site: Site) -> AbstractContextManager[subprocess.Popen[str]]:
    """Start `serve` without waiting for it; the process is killed if it outlives the block."""
    return launched([site.command, "serve"], cwd=site.project, env=site.env, log=site.log)


def create_slowly_for(seconds: float) -> Callable[[Site, int], tuple[int, Any, Any]]:
    """Create users whose inserts sleep `seconds` (see SLOW_INSERTS)."""

    def create(site: Site, number: int) -> tuple[int, Any, Any]:
        body = {"email": f"slow-{seconds}-{number}@x.io"}
        return call("POST", site.url("/api/v1/users"), body, site.key)

    return create


def probe_readiness(site: Site, seconds: float) -> list[tuple[float, object]]:
    """Probe readiness on new connections for `seconds`: (when, status or why it failed)."""
    probes: list[tuple[float, object]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        at = time.monotonic()
        try:
            answer: object = call("GET", site.url("/health/ready"), timeout=0.3)[0]
        except OSError as error:
            answer = type(error).__name__
        probes.append((at, answer))
        time.sleep(0.05)
    return probes


CONCURRENT_INDEX = '''"""An index built CONCURRENTLY, outside the migration's transaction."""

from alembic import op

revision = "c0c0c0c0c0c0"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_users_full_name", "users", ["full_name"], postgresql_concurrently=True)
    op.execute("COMMENT ON INDEX ix_users_full_name IS 'built concurrently'")


def downgrade() -> None:
    op.drop_index("ix_users_full_name", table_name="users")
'''


def test_two_migrations_at_once_apply_the_schema_once_across_an_autocommit_block(
    site: Site, fresh_project: Callable[[str], Path]
) -> None:
    """The lock outlives the commit an index built CONCURRENTLY needs: no migrator interleaves."""
    project = fresh_project("defaults")
    versions = project / "src" / package_of(project) / "migrations" / "versions"
    # Revision files are date-prefixed: the last is the head (API keys add one after the users').
    head = sorted(versions.glob("[0-9]*.py"))[-1].name.split("-")[1].split("_")[0]
    revision = CONCURRENT_INDEX.format(head=head)
    (versions / "2027_01_01_0000-c0c0c0c0c0c0_concurrent_index.py").write_text(revision)
    command = str(uv_sync(project) / package_of(project))
    env = {**site.env, "DATABASE_URL": site.server.create_database("race")}
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: migrate(command, project, env), range(2)))

    assert [result.returncode for result in results] == [0, 0], results
    applied = [
        line
        for r in results
        for line in (r.stdout + r.stderr).splitlines()
        if "Running upgrade" in line
    ]
    assert applied, results
    assert len(applied) == len(set(applied)), applied  # each revision ran once
    assert site.server.psql("SELECT version_num FROM alembic_version", "race") == "c0c0c0c0c0c0"
    index = "SELECT obj_description('ix_users_full_name'::regclass)"
    assert site.server.psql(index, "race") == "built concurrently"


def test_idle_keep_alive_connections_close_after_the_setting_not_uvicorns_default(
    site: Site,
) -> None:
    """The setting reaches the server: with 1 s, an idle connection lives about that long."""
    with serving(site, KEEP_ALIVE_TIMEOUT_SECONDS="1"):
        connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
        try:
            connection.request("GET", "/health/live")
            assert connection.getresponse().read()  # the whole answer: now the line is idle
            idle = time.monotonic()
            assert connection.sock is not None
            assert connection.sock.recv(1) == b""  # the server hangs up
            lived = time.monotonic() - idle
        finally:
            connection.close()
    assert 0.8 < lived < 2.0, lived
