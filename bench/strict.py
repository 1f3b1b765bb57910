"""The strict baseline: the fastest correct raw version of the service's two endpoints.

Starlette and an asyncpg pool, no middleware, orjson. The pool's `reset` does nothing: these
handlers never change a connection's session state, so asyncpg's default reset (a round trip on
every release) has nothing to undo. This is the limit the service is measured against.

Run with uvicorn (uvloop, httptools): `BASELINE_DATABASE_URL=... uvicorn bench.strict:app`.
"""

from datetime import datetime

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from bench.baseline import INSERT_USER, SELECT_USER, pool_app

JSON = "application/json"


def _body(row: asyncpg.Record) -> bytes:
    def encode(value: object) -> object:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value

    return orjson.dumps({key: encode(value) for key, value in row.items()})


async def get_user(request: Request) -> Response:
    """One user by id, or 404."""
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(SELECT_USER, request.path_params["user_id"])
    if row is None:
        return Response(b'{"detail":"not found"}', 404, media_type=JSON)
    return Response(_body(row), media_type=JSON)


async def create_user(request: Request) -> Response:
    """Insert a user; 201 with its Location."""
    pool: asyncpg.Pool = request.app.state.pool
    payload = orjson.loads(await request.body())
    row = await pool.fetchrow(INSERT_USER, payload["email"], payload["full_name"])
    if row is None:  # INSERT ... RETURNING returns the row; this keeps the types honest
        return Response(b'{"detail":"not inserted"}', 500, media_type=JSON)
    headers = {"Location": f"/api/v1/users/{row['id']}"}
    return Response(_body(row), 201, headers=headers, media_type=JSON)


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Nothing to undo: no handler changes a connection's settings, listeners or locks."""


app = pool_app(get_user, create_user, "strict", reset=_no_reset)
