"""First come, first served: the queue in front of a connection pool.

SQLAlchemy's async pool gives a returned connection to whichever task asks next, so under
load a request that has waited can lose its turn again and again, and the slowest requests
wait without bound. A FIFO semaphore sized to the pool admits units of work in arrival order,
and the pool never queues.
"""

import asyncio
from types import TracebackType
from typing import Protocol

from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class WaitObserver(Protocol):
    """Told of each wait for a turn (metrics, say); never of admissions that did not wait."""

    def started_waiting(self) -> float:
        """A unit of work starts waiting; returns a mark handed to `stopped_waiting`."""
        ...

    def stopped_waiting(self, started: float) -> None:
        """It was admitted, or gave up."""
        ...


class Turnstile:
    """At most `capacity` units of work at once, admitted in arrival order.

    `capacity=None` admits everyone at once (for pools that never queue, e.g. NullPool).
    """

    def __init__(self, capacity: int | None, timeout: float) -> None:
        """Admit `capacity` at once; wait at most `timeout` seconds for a turn."""
        self.capacity = capacity
        self.timeout = timeout
        self.observer: WaitObserver | None = None
        self._slots = asyncio.Semaphore(capacity) if capacity else None

    async def __aenter__(self) -> None:
        """Wait for a turn; the pool's own TimeoutError when it takes too long."""
        if self._slots is None:
            return
        if not self._slots.locked():  # a free turn and nobody waiting: no timer needed
            await self._slots.acquire()
            return
        observer = self.observer
        started = observer.started_waiting() if observer else 0.0
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeoutError(
                f"all {self.capacity} connections stayed busy for {self.timeout:g} s"
            ) from None
        finally:
            if observer:
                observer.stopped_waiting(started)

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Hand the turn to the next in line."""
        if self._slots is not None:
            self._slots.release()
