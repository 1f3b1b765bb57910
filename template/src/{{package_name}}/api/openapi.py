"""The OpenAPI document, told the truth about errors: every 4xx and 5xx is a problem.

FastAPI describes error responses as `application/json`, and validation errors in its own
shape; the service answers `application/problem+json` bodies of one shape (`api/errors/`).
"""

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_SHAPES = ("HTTPValidationError", "ValidationError")


def use_problem_documents(app: FastAPI) -> None:
    """Make `app.openapi()` describe every error response as a problem."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _describe_problems(build())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign] # FastAPI's documented override


def document(app: FastAPI) -> str:
    """The OpenAPI document as `openapi.json` keeps it: indented, keys in the app's order."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def _describe_problems(document: dict[str, Any]) -> None:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if code.isdigit() and int(code) >= 400 and _is_problem(schema):
                    response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_SHAPES:
        schemas.pop(name, None)


def _is_problem(schema: dict[str, Any] | None) -> bool:
    reference = (schema or {}).get("$ref", "")
    return reference == PROBLEM_REF["$ref"] or reference.rsplit("/", 1)[-1] in _FASTAPI_SHAPES
