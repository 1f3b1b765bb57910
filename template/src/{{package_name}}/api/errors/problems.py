"""RFC 9457 problem details: the one shape of every error response, with the request id."""

from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi.responses import JSONResponse
from pydantic import BaseModel

PROBLEM_JSON = "application/problem+json"
# The names RFC 9110 gives these statuses, which Python's `http` module took up only in 3.13:
# titles and the OpenAPI document stay the same whatever Python serves them.
RFC_9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


class FieldError(BaseModel):
    """One invalid part of a request: where it is, what is wrong, and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """What went wrong, in the shape of RFC 9457; `errors` and `constraint` when they apply."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None
    errors: list[FieldError] | None = None
    constraint: str | None = None


def problem(status_code: int, detail: str, **extra: Any) -> JSONResponse:
    """Build a problem response: `title` is the status phrase, `detail` says what went wrong."""
    body = {
        "type": "about:blank",
        "title": phrase(status_code),
        "status": status_code,
        "detail": detail,
        "request_id": correlation_id.get(),
        **extra,
    }
    return JSONResponse(body, status_code=status_code, media_type=PROBLEM_JSON)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each a problem (see `api.openapi`)."""
    return {status: {"model": Problem, "description": phrase(status)} for status in statuses}


def phrase(status_code: int) -> str:
    """The status's name, as RFC 9110 gives it."""
    return RFC_9110_PHRASES.get(status_code) or HTTPStatus(status_code).phrase
