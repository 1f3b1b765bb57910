"""RFC 9457 problem details: the one shape of every error response, with the request id."""

from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


def problem(status_code: int, detail: str, **extra: Any) -> JSONResponse:
    """Build a problem response: `title` is the status phrase, `detail` says what went wrong."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "request_id": correlation_id.get(),
        **extra,
    }
    return JSONResponse(body, status_code=status_code, media_type=PROBLEM_JSON)
