"""Drive the project's app in-process with N API requests, for callgrind to count.

`python -m bench.api_requests GET|POST N`, with the project's Python, this repository on
PYTHONPATH and the project's settings in the environment (a migrated, seeded DATABASE_URL),
under `valgrind --tool=callgrind --instr-atstart=no`. BENCH_AUTHORIZATION is the header the
requests carry. After a warm-up it switches counting on (`callgrind_control -i on`), sends N
requests 8 at a time, as the service's own logging configuration writes their access lines
to /dev/null, and exits at once: the count is the requests' alone, startup and shutdown left
out. Unlike CPU time under wrk, it does not move with the machine's load.
"""

import asyncio
import logging.config
import os
import random
import subprocess
import sys
import time
from typing import Any

import uvloop
from asgi_lifespan import LifespanManager  # type: ignore[import-not-found]
from demo_service.core.logs import logging_config  # type: ignore[import-not-found]
from demo_service.core.settings import get_settings  # type: ignore[import-not-found]
from demo_service.main import create_app  # type: ignore[import-not-found]

from bench.asgi_requests import SCOPE

WARM_UP, AT_ONCE, USERS = 40, 8, 10_000


def request(method: str, number: int, run: int) -> tuple[dict[str, Any], bytes]:
    """The scope and body of request `number`: a random seeded user, or a new unique one."""
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if authorization := os.environ.get("BENCH_AUTHORIZATION"):
        headers.append((b"authorization", authorization.encode()))
    body = b""
    if method == "GET":
        path = f"/api/v1/users/{random.randint(1, USERS)}"  # noqa: S311
    else:
        path = "/api/v1/users"
        body = b'{"email":"inproc-%d-%d@example.com","full_name":"Bench"}' % (run, number)
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        **SCOPE,
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "headers": headers,
    }
    return scope, body


async def drive(method: str, requests: int) -> None:
    """Warm up, then count `requests` requests; any answer but a success stops the run."""
    settings = get_settings()
    config = logging_config(settings.log_level, settings.log_format)
    config["handlers"]["default"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
    logging.config.dictConfig(config)
    run = time.time_ns()

    async with LifespanManager(create_app(settings)) as manager:

        async def one(number: int) -> None:
            scope, body = request(method, number, run)
            statuses = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await manager.app(scope, receive, send)
            if statuses != [200 if method == "GET" else 201]:
                raise SystemExit(f"{method} {scope['path']} answered {statuses}")

        for number in range(-WARM_UP, 0):
            await one(number)
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
        for first in range(0, requests, AT_ONCE):
            await asyncio.gather(*(one(first + n) for n in range(AT_ONCE)))
        os._exit(0)  # nothing after the requests is counted


if __name__ == "__main__":
    random.seed(1)
    uvloop.run(drive(sys.argv[1], int(sys.argv[2])))  # the loop `serve` runs on
