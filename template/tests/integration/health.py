"""`health`: the app is alive and ready, the first thing to know before checking more.

With `--wait`, it keeps asking until the app is ready: CI starts the app in the background and
uses this to know when it may begin. It asks without the API key, as a load balancer or an
orchestrator does: the probes must answer anyone.
"""

import argparse
import asyncio
import time

import httpx

from tests.integration.client import connect, unreachable
from tests.integration.command import CheckFailed, Command

RETRY_SECONDS = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--wait SECONDS`: how long to retry before a not-ready app fails the check."""
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="retry for up to this long until the app is ready (default: ask once)",
    )


async def run(arguments: argparse.Namespace) -> None:
    """Fail unless /health/live and /health/ready both answer 200 (within `--wait`)."""
    deadline = time.monotonic() + arguments.wait
    async with connect(arguments.app_url, connections=1) as client:
        while True:
            problem = await _problem(client, arguments.app_url)
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise CheckFailed(problem)
            await asyncio.sleep(RETRY_SECONDS)


async def _problem(client: httpx.AsyncClient, app_url: str) -> str | None:
    """Ask both probes once; print them and return None if ready, else say what is wrong."""
    try:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    except httpx.TransportError as error:
        return unreachable(app_url, error)
    if live.status_code != 200:
        return f"/health/live answered {live.status_code}: {live.text[:300]}"
    if ready.status_code != 200:
        return f"/health/ready answered {ready.status_code}, not ready: {ready.text[:300]}"
    checks = ", ".join(f"{role}: {state}" for role, state in ready.json()["checks"].items())
    print(f"live: {live.json()['status']}")
    print(f"ready: {ready.json()['status']} ({checks})")
    return None


COMMAND = Command(
    "health", "check that the app is alive and ready (exits 1 if not)", add_arguments, run
)
