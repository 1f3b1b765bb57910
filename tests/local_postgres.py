"""The template's own PostgreSQL launcher, loaded from its file in `template/`.

The generated projects ship `db/local_postgres.py` (standard library only, no template syntax);
the template's tests start their servers with that very file, so it is tested where it lives.
"""

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

SOURCE = (
    Path(__file__).resolve().parent.parent
    / "template"
    / "src"
    / "{{package_name}}"
    / "db"
    / "local_postgres.py"
)
RELOAD_TIMEOUT_SECONDS = 10.0


def load() -> ModuleType:
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


def require_password(server: Any, database: str, role: str, password: str) -> str:
    """Make `role` own `database` and log in only with a scram-sha-256 password; return its URL.

    The launcher's clusters trust every local connection, where a password is never sent; this
    rule covers `role` alone, so the launcher's own helpers (as `postgres`) still need none.
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
