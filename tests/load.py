"""A small HTTP/1.1 load generator: many keep-alive connections, bounded in time, on loopback."""

import asyncio
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Request = tuple[str, str, object]  # method, path, JSON body (or None)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: when it was sent and answered (monotonic seconds) and how it ended."""

    started: float
    ended: float
    result: str  # the status ("200", "503", ...), "socket error" or "connect error"


@dataclass
class Load:
    """What a run of `drive` saw: every outcome, in the order they ended."""

    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """How many requests ended each way."""
        return Counter(outcome.result for outcome in self.outcomes)

    def failures(self) -> list[Outcome]:
        """The requests that did not get a 2xx answer."""
        return [outcome for outcome in self.outcomes if not outcome.result.startswith("2")]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request, extra: str
) -> str:
    method, path, body = request
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data)
    await writer.drain()
    status = (await reader.readline()).split()[1].decode()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def _connection(
    port: int,
    deadline: float,
    next_request: Callable[[], Request],
    load: Load,
    extra: str,
    stop: threading.Event,
) -> None:
    """Send requests one after another, each with the `extra` header lines; reconnect on failure.

    Ends at the deadline, or earlier once `stop` is set.
    """
    while time.monotonic() < deadline and not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            load.outcomes.append(Outcome(started, time.monotonic(), "connect error"))
            await asyncio.sleep(0.05)
            continue
        try:
            while time.monotonic() < deadline and not stop.is_set():
                started = time.monotonic()
                status = await _exchange(reader, writer, next_request(), extra)
                load.outcomes.append(Outcome(started, time.monotonic(), status))
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            load.outcomes.append(Outcome(started, time.monotonic(), "socket error"))
        finally:
            writer.close()


async def drive(
    port: int,
    connections: int,
    seconds: float,
    next_request: Callable[[], Request],
    headers: Mapping[str, str] | None = None,
) -> Counter[str]:
    """Send requests over `connections` keep-alive connections for `seconds`; count outcomes.

    Every request carries `headers` (a client's credential, say) besides its own.
    """
    return (await run_load(port, connections, seconds, next_request, headers)).counts()


async def run_load(
    port: int,
    connections: int,
    seconds: float,
    next_request: Callable[[], Request],
    headers: Mapping[str, str] | None = None,
    stop: threading.Event | None = None,
) -> Load:
    """As `drive`, keeping every outcome with its times; `stop`, once set, ends it early."""
    load = Load()
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    # Formatted once: the generator's own work per request stays as small as it was.
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    await asyncio.gather(
        *(_connection(port, deadline, next_request, load, extra, stop) for _ in range(connections))
    )
    return load


def reads_and_writes(user_path: str) -> Callable[[], Request]:
    """Alternate reads of one user with creations of new users (unique emails)."""
    numbers = itertools.count()

    def next_request() -> Request:
        number = next(numbers)
        if number % 2:
            return "GET", user_path, None
        return "POST", "/api/v1/users", {"email": f"load{number}@example.com", "full_name": "L"}

    return next_request
