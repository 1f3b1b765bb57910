"""The reference baseline: the generated service's two endpoints on Starlette and asyncpg.

The same paths and JSON shapes, with no ORM, no validation library and no middleware, but
asyncpg's default pool reset (a round trip on every release) and the standard library's json:
the baseline of earlier releases, kept beside the strict one (`bench/strict.py`).

Run with uvicorn (uvloop, httptools): `BASELINE_DATABASE_URL=... uvicorn bench.baseline:app`.
"""

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]
Reset = Callable[[asyncpg.Connection], Awaitable[None]]

SELECT_USER = "SELECT id, email, full_name, created_at, updated_at FROM users WHERE id = $1"
INSERT_USER = (
    "INSERT INTO users (email, full_name) VALUES ($1, $2)"
    " RETURNING id, email, full_name, created_at, updated_at"
)


def _body(row: asyncpg.Record) -> bytes:
    def encode(value: Any) -> Any:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value

    return json.dumps({key: encode(value) for key, value in row.items()}).encode()


async def get_user(request: Request) -> Response:
    """One user by id, or 404."""
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(SELECT_USER, int(request.path_params["user_id"]))
    if row is None:
        return Response(b'{"detail":"not found"}', 404, media_type="application/json")
    return Response(_body(row), media_type="application/json")


async def create_user(request: Request) -> Response:
    """Insert a user; 201 with its Location."""
    pool: asyncpg.Pool = request.app.state.pool
    payload = json.loads(await request.body())
    row = await pool.fetchrow(INSERT_USER, payload["email"], payload["full_name"])
    assert row is not None  # noqa: S101 - INSERT ... RETURNING always returns the row
    return Response(
        _body(row),
        201,
        headers={"Location": f"/api/v1/users/{row['id']}"},
        media_type="application/json",
    )


def pool_app(
    get_user: Endpoint, create_user: Endpoint, name: str, reset: Reset | None = None
) -> Starlette:
    """The two endpoints on a pool sized like the service's writer pool, named `name`.

    `reset` runs on every release (None: asyncpg's default, a round trip each time).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        size = int(os.environ.get("BASELINE_POOL_SIZE", "10"))
        app.state.pool = await asyncpg.create_pool(
            os.environ["BASELINE_DATABASE_URL"],
            min_size=size,
            max_size=size,
            reset=reset,
            server_settings={"application_name": name},
        )
        yield
        await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/api/v1/users/{user_id:int}", get_user, methods=["GET"]),
            Route("/api/v1/users", create_user, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


app = pool_app(get_user, create_user, "baseline")
