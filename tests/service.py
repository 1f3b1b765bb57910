"""A generated service's command run as a real process, and plain HTTP calls to it."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLY_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def call(
    method: str,
    url: str,
    body: object = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = REPLY_TIMEOUT_SECONDS,
) -> tuple[int, Any, Mapping[str, str]]:
    """Send one request; return the status, the decoded JSON body (or None) and the headers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http only
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw, status, received = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, received = error.read(), error.code, error.headers
    return status, json.loads(raw) if raw else None, dict(received)


def wait_until_ready(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited with {process.returncode}")
        try:
            if call("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s")


@contextmanager
def running(
    command: list[str], *, cwd: Path, env: Mapping[str, str], ready_url: str, log: Path
) -> Iterator[subprocess.Popen[str]]:
    """Run a service until the block ends, then stop it with SIGINT or SIGTERM as a user would."""
    with launched(command, cwd=cwd, env=env, log=log) as process:
        try:
            wait_until_ready(ready_url, process)
            yield process
        except BaseException as error:
            raise AssertionError(f"{error}\n--- service log ---\n{log.read_text()}") from error


@contextmanager
def launched(
    command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    """Start a service in a process group of its own; kill the group if it outlives the block."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def migrate(
    command: str, project: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run `<command> migrate` and return its result, failed or not, with its output."""
    return subprocess.run(
        [command, "migrate"],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )


def issue_key(
    command: str, project: Path, env: Mapping[str, str], *scopes: str, name: str = "tests"
) -> dict[str, str]:
    """Issue an API key with the project's own `api-key create`; return the header carrying it.

    A project without API keys (another `auth`) has no such command: no header, then.
    """
    if not re.search(r"^auth: api_key$", (project / ".copier-answers.yml").read_text(), re.M):
        return {}
    options = [arg for scope in scopes or ("read", "write") for arg in ("--scope", scope)]
    issued = subprocess.run(
        [command, "api-key", "create", "--name", name, *options],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    return {"Authorization": f"Bearer {issued.stdout.strip()}"}


def migrated_and_serving(
    command: str, project: Path, env: Mapping[str, str], log: Path
) -> AbstractContextManager[subprocess.Popen[str]]:
    """Migrate with the project's command, then run `<command> serve` until the block ends."""
    subprocess.run(
        [command, "migrate"], cwd=project, env=dict(env), check=True, capture_output=True
    )
    ready_url = f"http://127.0.0.1:{env['PORT']}/health/ready"
    return running([command, "serve"], cwd=project, env=env, ready_url=ready_url, log=log)


def stop(process: subprocess.Popen[str], sig: signal.Signals, timeout: float = 30) -> bool:
    """Send `sig`; return whether the process then exited cleanly within the timeout.

    uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit status of a
    clean stop is 0 or "killed by `sig`".
    """
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout) in (0, -sig)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the service did not exit within {timeout} s of {sig.name}") from None


def leftovers(process: subprocess.Popen[str], timeout: float = 5) -> list[str]:
    """Live (non-zombie) processes still in the service's process group after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            cmdline
            for cmdline, group, state in _processes()
            if group == process.pid and state != "Z"
        ]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live (non-zombie) processes that contain `text`."""
    return [cmdline for cmdline, _, state in _processes() if text in cmdline and state != "Z"]


def _processes() -> list[tuple[str, int, str]]:
    """(command line, process group, state) of every process, from Linux's /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        found.append((cmdline, int(fields[2]), fields[0]))
    return found


class PeakSessions(threading.Thread):
    """Poll PostgreSQL with a counting query; keep the highest count seen while it runs."""

    def __init__(self, postgres: Any, query: str, database: str = "postgres") -> None:
        """Watch what `query` counts on `database` until `done` is set."""
        super().__init__(daemon=True)
        self.postgres, self.query, self.database = postgres, query, database
        self.peak, self.done = 0, threading.Event()

    def run(self) -> None:
        """Poll every 50 ms."""
        while not self.done.wait(0.05):
            self.peak = max(self.peak, int(self.postgres.psql(self.query, database=self.database)))


@dataclass(frozen=True)
class Reply:
    """A response as the server sent it: status, headers (lower-case names) and raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, decoded as JSON."""
        return json.loads(self.body)

    def __str__(self) -> str:
        """Status, headers and the start of the body, for assertion messages."""
        return f"{self.status} {dict(self.headers)} {self.body[:600]!r}"


def exchange(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    chunked: bool = False,
    declared_length: int | None = None,
) -> Reply:
    """Send one request over a raw socket, byte for byte as given, and read the reply.

    The body goes out from a thread while the reply is read, so a server that answers before it
    has read a large body (413) is heard, not reset. `declared_length` claims a Content-Length
    other than the body's; `chunked` sends the body in 64 KiB chunks and no Content-Length.
    """
    given = dict(headers or {})
    lines = [f"{method} {target} HTTP/1.1"]
    if not any(name.lower() == "host" for name in given):
        lines.append(f"Host: 127.0.0.1:{port}")
    lines += [f"{name}: {value}" for name, value in given.items()]
    lines.append("Connection: close")
    payload = body
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[start : start + 65536] for start in range(0, len(body), 65536)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
        payload += b"0\r\n\r\n"
    elif body or declared_length is not None or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body) if declared_length is None else declared_length}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()

    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_SECONDS) as connection:
        connection.sendall(head)
        sender = threading.Thread(target=_send_quietly, args=(connection, payload), daemon=True)
        sender.start()
        try:
            response = http.client.HTTPResponse(connection, method=method)
            response.begin()
            data = response.read()
        finally:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)  # wakes a sender the server stopped reading
            sender.join(REPLY_TIMEOUT_SECONDS)
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def _send_quietly(connection: socket.socket, payload: bytes) -> None:
    """Send what the server will take; a server that answered early may close on the rest."""
    with suppress(OSError):
        connection.sendall(payload)
