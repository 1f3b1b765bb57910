"""Every route of the API names the permission it needs: none is left open by omission."""

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPBearer
from httpx import ASGITransport, AsyncClient

API_PREFIX = "/api/"


def api_operations(app: FastAPI) -> list[tuple[str, str, dict[str, object]]]:
    """Each API operation of the OpenAPI document: method, path and the operation itself."""
    return [
        (method.upper(), path, operation)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(API_PREFIX)
        for method, operation in operations.items()
    ]


def test_every_api_route_declares_the_bearer_credential(app: FastAPI) -> None:
    unguarded = [
        f"{method} {path}"
        for method, path, operation in api_operations(app)
        if operation.get("security") != [{"HTTPBearer": []}]
    ]

    assert unguarded == [], "add `dependencies=[can_read]` or `[can_write]` to these routes"


def test_every_api_route_checks_its_credential_in_one_dependency(app: FastAPI) -> None:
    """FastAPI solves every dependency on every request: the permission is the bearer scheme."""
    costly = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path_format or ""
        if not isinstance(route, APIRoute) or not path.startswith(API_PREFIX):
            continue
        checks = [d for d in context.dependant.dependencies if isinstance(d.call, HTTPBearer)]
        if len(checks) != 1 or checks[0].dependencies:
            costly.append(f"{','.join(sorted(route.methods or ()))} {path}")

    assert costly == [], "name the permission once, as `dependencies=[can_read]` or `[can_write]`"


async def test_every_api_route_refuses_a_request_without_a_credential(app: FastAPI) -> None:
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://localhost") as anonymous:
        answers = {
            f"{method} {path}": (
                await anonymous.request(method, re.sub(r"\{\w+\}", "1", path))
            ).status_code
            for method, path, _ in api_operations(app)
        }

    assert set(answers.values()) <= {401}, answers
