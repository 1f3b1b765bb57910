"""The HTTP client the checks share: one pool per run, bounded waits, expected statuses.

Every wait is bounded, so a hung service fails a check instead of hanging CI. The API key, when
given, goes in every request's `Authorization: Bearer` header, as any client of the API sends it.
"""

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from tests.integration.command import CheckFailed

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PAGE_SIZE = 100  # the largest page the list endpoints serve
CREDENTIAL_HINT = " (is API_KEY, or --api-key, a valid key with the scopes this check needs?)"


def connect(app_url: str, connections: int = 8, api_key: str | None = None) -> httpx.AsyncClient:
    """A client for the app at `app_url`, holding at most `connections` connections open.

    With `api_key`, every request carries it; without, requests go unauthenticated.
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(base_url=app_url, timeout=TIMEOUT, limits=limits, headers=headers)


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    """The response, if its status is one of `statuses`; else a failure quoting what came."""
    if response.status_code not in statuses:
        wanted = " or ".join(map(str, statuses))
        hint = CREDENTIAL_HINT if response.status_code in (401, 403) else ""
        raise CheckFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {wanted}{hint}: {response.text[:300]}"
        )
    return response


def unreachable(app_url: str, error: httpx.TransportError) -> str:
    """The message for an app that does not answer at all."""
    return f"cannot reach the app at {app_url} ({type(error).__name__}: {error}); is it running?"


async def pages(
    client: httpx.AsyncClient, path: str, params: Mapping[str, str | int] | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page of a list endpoint (`limit`/`offset`), first to last."""
    offset = 0
    while True:
        query = {**(params or {}), "limit": PAGE_SIZE, "offset": offset}
        page: list[dict[str, Any]] = expect(await client.get(path, params=query), 200).json()
        yield page
        if len(page) < PAGE_SIZE:
            return
        offset += len(page)
