"""One access line per request: method, route template, status and duration.

Pure ASGI and inside the request-id middleware, so the line carries the request's id. It logs
the route template (`/api/v1/users/{user_id}`), never the query string or any header, so no
token or password can reach the log through it.
"""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("access")


class AccessLog:
    """Log each HTTP request once, after its response has been sent (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app`."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request and log its outcome."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                route_template(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )


def route_template(scope: Scope) -> str:
    """The matched route as a template, e.g. `/api/v1/users/{user_id}`; `<unmatched>` if none.

    Rebuilt from the path and the matched path parameters, so no id or slug reaches the log.
    """
    if "endpoint" not in scope:
        return "<unmatched>"
    names = {str(value): name for name, value in scope.get("path_params", {}).items()}
    segments = scope["path"].split("/")
    return "/".join("{" + names[part] + "}" if part in names else part for part in segments)
