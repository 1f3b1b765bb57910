"""A served project behind a real PgBouncer in transaction mode, configured as its README says.

PgBouncer comes from Debian (`apt-get install pgbouncer`; this machine has 1.18, older than
`max_prepared_statements`). The test takes the configuration, the role settings and the
service's variables from the generated README's "Behind PgBouncer" section, changing only ports
and paths, so the README says exactly what is tested.
"""

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.local_postgres import load, require_password
from tests.service import PeakSessions, call, free_port, issue_key, migrate, running, stop
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.pgbouncer

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVER_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"
START_TIMEOUT_SECONDS = 10.0
NOBODY, NOBODY_GROUP = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid


@dataclass(frozen=True)
class Bouncer:
    """PgBouncer in front of a PostgreSQL server, and the service's settings to use it."""

    server: Any
    port: int
    password: str
    service_env: dict[str, str]

    def url(self, database: str) -> str:
        """A URL of `database` through PgBouncer, with the role's password."""
        return f"postgresql://app:{self.password}@127.0.0.1:{self.port}/{database}"


def readme_block(readme: str, language: str) -> str:
    """The first code block of `language` in the README's "Behind PgBouncer" section."""
    section = readme[readme.index("### Behind PgBouncer") :]
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found, f"no {language} block in the README's PgBouncer section"
    return found.group(1)


def configuration(readme: str, server_port: int, port: int, folder: Path) -> str:
    """The README's pgbouncer.ini with this test's ports and paths."""
    ini = readme_block(readme, "ini")
    replaced = {
        "port=5432": f"port={server_port}",
        "listen_port = 6432": f"listen_port = {port}",
        "/etc/pgbouncer/userlist.txt": str(folder / "userlist.txt"),
    }
    for old, new in replaced.items():
        assert old in ini, old
        ini = ini.replace(old, new)
    # Where this run keeps its files; the [pgbouncer] section is the last one.
    return ini + f"logfile = {folder / 'pgbouncer.log'}\nunix_socket_dir =\n"


def service_variables(readme: str, port: int, password: str) -> dict[str, str]:
    """The README's variables for the service, pointed at this PgBouncer."""
    lines = readme_block(readme, "sh").strip().splitlines()
    variables = dict(line.split("=", 1) for line in lines)
    variables["DATABASE_URL"] = variables["DATABASE_URL"].replace(":6432/", f":{port}/")
    return {**variables, "DATABASE_PASSWORD": password}


def private_folder() -> Path:
    """A folder PgBouncer may read: as root it runs as `nobody`, which cannot enter pytest's."""
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY_GROUP)
    return folder


def start_pgbouncer(config: Path, port: int) -> subprocess.Popen[bytes]:
    """Start PgBouncer (as `nobody` when we are root: it refuses root) and wait for its port."""
    as_root = os.geteuid() == 0
    process = subprocess.Popen(
        [PGBOUNCER, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        user=NOBODY if as_root else None,
        group=NOBODY_GROUP if as_root else None,
        extra_groups=[] if as_root else None,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (config.parent / "pgbouncer.log").read_text(errors="replace")
                raise AssertionError(f"PgBouncer did not start:\n{log}") from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def project(rendered: Callable[[str], Path]) -> Path:
    """The default project, installed."""
    project = rendered("defaults")
    uv_sync(project)
    return project


@pytest.fixture(scope="module")
def bouncer(project: Path) -> Iterator[Bouncer]:
    """PostgreSQL, a password role `app` set up as the README says, and PgBouncer before it."""
    readme = (project / "README.md").read_text()
    password = secrets.token_urlsafe(16)
    with load().LocalPostgres() as server:
        server.create_database("app")
        require_password(server, "app", "app", password)
        server.psql("ALTER ROLE app CREATEDB")  # the generated suite makes databases of its own
        for statement in readme_block(readme, "sql").strip().splitlines():
            server.psql(statement)
        folder = private_folder()
        try:
            port = free_port()
            userlist = folder / "userlist.txt"
            userlist.write_text(f'"app" "{password}"\n')
            config = folder / "pgbouncer.ini"
            config.write_text(configuration(readme, server.port, port, folder))
            for path in (userlist, config):
                path.chmod(0o600)
                if os.geteuid() == 0:
                    os.chown(path, NOBODY, NOBODY_GROUP)
            process = start_pgbouncer(config, port)
            try:
                yield Bouncer(server, port, password, service_variables(readme, port, password))
            finally:
                process.terminate()
                process.wait(10)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


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
