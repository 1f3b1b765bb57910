"""Drive the project's app in-process with N requests to `/health/live`, for callgrind to count.

`python -m bench.asgi_requests MODE N`, with the project's Python and this repository on
PYTHONPATH. MODE is `off` (as shipped) or `defaults` (FastAPI's telemetry at its defaults).
The route does no I/O, so the instructions counted are the framework's and the service's own.
"""

import asyncio
import logging
import sys
from typing import Any

from demo_service.core.settings import Settings  # type: ignore[import-not-found]
from demo_service.main import create_app  # type: ignore[import-not-found]

from bench.fastapi_defaults import with_fastapi_defaults

WARM_UP = 200
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/health/live",
    "raw_path": b"/health/live",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 1),
    "server": ("localhost", 80),
}


async def drive(mode: str, requests: int) -> None:
    """Send WARM_UP + `requests` requests, discarding the answers and the log lines."""
    settings = Settings(_env_file=None, database_url="postgresql://bench@127.0.0.1:1/none")
    app = create_app(settings)
    if mode == "defaults":
        with_fastapi_defaults(app)
    logging.disable(logging.CRITICAL)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    for _ in range(WARM_UP + requests):
        await app(dict(SCOPE), receive, send)


if __name__ == "__main__":
    asyncio.run(drive(sys.argv[1], int(sys.argv[2])))
