"""The template's own PostgreSQL launcher, loaded from its file in `template/`, with test extras.

The generated projects ship `devtools/local_postgres.py` (standard library only, no template
syntax); the template's tests start their servers with that very file, so it is tested where it
lives. What only these tests need (replicas, `psql`, `createdb`) is added here, in a subclass.
"""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

SOURCE = (
    Path(__file__).resolve().parent.parent
    / "template"
    / "src"
    / "{{package_name}}"
    / "devtools"
    / "local_postgres.py"
)
RELOAD_TIMEOUT_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 120


def _import_shipped() -> ModuleType:
    """Import the launcher module from the template's source tree (once)."""
    name = "keel_local_postgres"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SOURCE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


shipped = _import_shipped()
LocalPostgresError = shipped.LocalPostgresError
find_bin_dir = shipped.find_bin_dir
_ShippedLocalPostgres: Any = shipped.LocalPostgres  # loaded from a path: mypy cannot see it


class LocalPostgres(_ShippedLocalPostgres):  # type: ignore[misc]
    """The shipped server, plus what only the template's tests use: replicas, psql, createdb."""

    _primary: "LocalPostgres | None" = None

    @classmethod
    def replica_of(cls, primary: "LocalPostgres", data_dir: Path | None = None) -> Self:
        """Describe a hot standby of ``primary`` (one that trusts local connections).

        ``start()`` takes the base backup when the folder holds no cluster yet.
        """
        replica = cls(data_dir, bin_dir=primary._requested_bin_dir)
        replica._primary = primary
        return replica

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        self._run_client("createdb", "--", name)
        return f"{self.url.rsplit('/', 1)[0]}/{quote(name, safe='')}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with ``psql -Atc`` and return its output without the final newline."""
        output = self._run_client(
            "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", database, "-Atc", sql
        )
        return output.removesuffix("\n")

    def _run_client(self, tool: str, *args: str) -> str:
        """Run a client tool against the server as `postgres`, with its password if it has one."""
        connection = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-w"]
        password = urlsplit(self.url).password
        env = {**os.environ, "PGPASSWORD": unquote(password)} if password else None
        result = subprocess.run(
            [self._tool(tool), *connection, *args],
            env=env,  # not on the command line, where every user could read it
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            output = f"{result.stdout}{result.stderr}".strip()
            raise LocalPostgresError(f"{tool} failed ({result.returncode}):\n{output}")
        return result.stdout

    def _cluster_command(self, data_dir: Path) -> list[str]:
        """A replica's cluster is a base backup of its primary, set up to follow it (``-R``)."""
        if self._primary is None:
            command: list[str] = super()._cluster_command(data_dir)
            return command
        args = [self._tool("pg_basebackup"), "-D", str(data_dir), "-R", "-X", "stream"]
        args += ["-h", "127.0.0.1", "-p", str(self._primary.port), "-U", "postgres"]
        return [*args, "--checkpoint=fast"]  # the default spread checkpoint can take minutes

    def _server_settings(self) -> list[str]:
        """A replica follows its primary even if the primary moved to another port."""
        settings: list[str] = super()._server_settings()
        if self._primary is None:
            return settings
        conninfo = f"host=127.0.0.1 port={self._primary.port} user=postgres"
        return [*settings, f"primary_conninfo={conninfo}"]


def load() -> ModuleType:
    """The launcher as the template's tests use it: this module, whose `LocalPostgres` has extras.

    It also offers the shipped `LocalPostgresError` and `find_bin_dir`; the shipped module
    itself, with its private helpers, is `shipped`.
    """
    return sys.modules[__name__]


def require_password(server: Any, database: str, role: str, password: str) -> str:
    """Make `role` own `database` and log in only with a scram-sha-256 password; return its URL.

    Throwaway clusters trust every local connection, where a password is never sent; this
    rule covers `role` alone, so the helpers here (as `postgres`) still need none.
    """
    server.psql(
        f"SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'"
    )
    server.psql(f'ALTER DATABASE "{database}" OWNER TO {role}')
    rules = server.data_dir / "pg_hba.conf"  # the first matching line wins
    rules.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n{rules.read_text()}")
    _reload_configuration(server)
    credentials = f"{quote(role, safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@127.0.0.1:{server.port}/{quote(database, safe='')}"


def _reload_configuration(server: Any) -> None:
    """Reload the server's files and wait until new connections follow them."""
    loaded = server.psql("SELECT pg_conf_load_time()")
    server.psql("SELECT pg_reload_conf()")  # asynchronous: it only signals the postmaster
    deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
    while server.psql("SELECT pg_conf_load_time()") == loaded:  # a new session: the postmaster's
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL did not reload within {RELOAD_TIMEOUT_SECONDS} s")
        time.sleep(0.01)
    errors = server.psql("SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL")
    if errors:
        raise ValueError(f"pg_hba.conf has errors, so the server kept its old rules: {errors}")
