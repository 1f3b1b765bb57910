"""The job queue's connection: one of the writer engine's, handed to pgqueuer as asyncpg's."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import asyncpg
from pgqueuer import AsyncpgDriver
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def queue_driver(engine: AsyncEngine) -> AsyncIterator[AsyncpgDriver]:
    """The queue's driver on a connection of the engine's pool, given back when the block ends.

    The connection has the engine's settings (timeouts, application name, statement cache), and
    stays out of the pool as long as the queue holds it.
    """
    async with engine.connect() as connection:
        pooled = await connection.get_raw_connection()
        yield AsyncpgDriver(cast(asyncpg.Connection, pooled.driver_connection))
