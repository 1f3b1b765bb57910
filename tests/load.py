"""A small HTTP/1.1 load generator: many keep-alive connections, bounded in time, on loopback."""

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable

Request = tuple[str, str, object]  # method, path, JSON body (or None)


async def _connection(
    port: int, deadline: float, next_request: Callable[[], Request], outcomes: Counter[str]
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        outcomes["connect error"] += 1
        return
    try:
        while time.monotonic() < deadline:
            method, path, body = next_request()
            data = json.dumps(body).encode() if body is not None else b""
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            )
            writer.write(head.encode() + data)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            outcomes[str(status)] += 1
    except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
        outcomes["socket error"] += 1
    finally:
        writer.close()


async def drive(
    port: int, connections: int, seconds: float, next_request: Callable[[], Request]
) -> Counter[str]:
    """Send requests over `connections` keep-alive connections for `seconds`; count outcomes."""
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    await asyncio.gather(
        *(_connection(port, deadline, next_request, outcomes) for _ in range(connections))
    )
    return outcomes


def reads_and_writes(user_path: str) -> Callable[[], Request]:
    """Alternate reads of one user with creations of new users (unique emails)."""
    numbers = itertools.count()

    def next_request() -> Request:
        number = next(numbers)
        if number % 2:
            return "GET", user_path, None
        return "POST", "/api/v1/users", {"email": f"load{number}@example.com", "full_name": "L"}

    return next_request
