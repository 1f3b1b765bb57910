"""A real PgBouncer (Debian's) before a throwaway PostgreSQL, set up as a generated project says.

PgBouncer comes from Debian (`apt-get install pgbouncer`; this machine has 1.18, older than
`max_prepared_statements`). The configuration, the role settings and the service's variables
are the "Behind PgBouncer" section of the generated docs/database.md, with only ports and paths
changed, so that page says exactly what is tested (tests/test_pgbouncer.py,
tests/test_rolling_deploy.py).
"""

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.local_postgres import load, require_password
from tests.service import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
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


def database_page(project: Path) -> str:
    """The generated project's docs/database.md, whose "Behind PgBouncer" section is tested."""
    return (project / "docs" / "database.md").read_text()


def pgbouncer_block(page: str, language: str) -> str:
    """The first code block of `language` in the page's "Behind PgBouncer" section."""
    section = page[page.index("## Behind PgBouncer") :]
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    if found is None:
        raise AssertionError(f"no {language} block in the docs' PgBouncer section")
    return found.group(1)


def configuration(page: str, server_port: int, port: int, folder: Path) -> str:
    """The documented pgbouncer.ini with this test's ports and paths."""
    ini = pgbouncer_block(page, "ini")
    replaced = {
        "port=5432": f"port={server_port}",
        "listen_port = 6432": f"listen_port = {port}",
        "/etc/pgbouncer/userlist.txt": str(folder / "userlist.txt"),
    }
    for old, new in replaced.items():
        if old not in ini:
            raise AssertionError(f"the documented pgbouncer.ini no longer has {old!r}")
        ini = ini.replace(old, new)
    # Where this run keeps its files; the [pgbouncer] section is the last one.
    return ini + f"logfile = {folder / 'pgbouncer.log'}\nunix_socket_dir =\n"


def service_variables(page: str, port: int, password: str) -> dict[str, str]:
    """The documented variables for the service, pointed at this PgBouncer."""
    lines = pgbouncer_block(page, "sh").strip().splitlines()
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


@contextmanager
def bouncing(page: str) -> Iterator[Bouncer]:
    """PostgreSQL, a password role `app` set up as the page says, and PgBouncer before it."""
    password = secrets.token_urlsafe(16)
    with load().LocalPostgres() as server:
        server.create_database("app")
        require_password(server, "app", "app", password)
        for statement in pgbouncer_block(page, "sql").strip().splitlines():
            server.psql(statement)
        folder = private_folder()
        try:
            port = free_port()
            userlist = folder / "userlist.txt"
            userlist.write_text(f'"app" "{password}"\n')
            config = folder / "pgbouncer.ini"
            config.write_text(configuration(page, server.port, port, folder))
            for path in (userlist, config):
                path.chmod(0o600)
                if os.geteuid() == 0:
                    os.chown(path, NOBODY, NOBODY_GROUP)
            process = start_pgbouncer(config, port)
            try:
                yield Bouncer(server, port, password, service_variables(page, port, password))
            finally:
                process.terminate()
                process.wait(10)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
