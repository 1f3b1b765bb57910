"""Requests sent under load: each one timed, each failure kept, for a report at the end.

A check under load should count every failure and carry on, not stop at the first: the report
then says how many failed and how, next to the throughput and tail latency the rest achieved.
"""

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx


@dataclass
class Load:
    """Requests through one client: how many, the latency of each answer, a line per failure."""

    client: httpx.AsyncClient
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def send(
        self, method: str, path: str, expected: int, body: object = None
    ) -> httpx.Response | None:
        """The response if it has the expected status; else None, with the failure recorded."""
        self.sent += 1
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.HTTPError as error:
            self.errors.append(f"{method} {path}: {type(error).__name__}: {error}")
            return None
        self.latencies.append(time.perf_counter() - started)
        if response.status_code != expected:
            self.errors.append(
                f"{method} {path} answered {response.status_code}, expected {expected}: "
                f"{response.text[:200]}"
            )
            return None
        return response

    def rates(self, seconds: float) -> str:
        """Requests per second over `seconds`, and the median and 99th percentile latencies."""
        answered = sorted(self.latencies) or [0.0]
        p50 = statistics.median(answered)
        p99 = answered[math.ceil(0.99 * len(answered)) - 1]  # the nearest rank
        return (
            f"{self.sent / seconds:.1f} requests/s; latency p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms"
        )


async def concurrently(at_once: int, jobs: Iterable[Callable[[], Awaitable[object]]]) -> None:
    """Run every job, `at_once` at a time; what they return is dropped (jobs record results)."""
    gate = asyncio.Semaphore(at_once)

    async def one(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))
