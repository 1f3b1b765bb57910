"""The request's id (X-Request-ID) on its server span, so a trace leads to the request's logs."""

from asgi_correlation_id import correlation_id
from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send


class RequestIdOnSpan:
    """Pure ASGI middleware: record the request's id on its server span, when tracing."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap `app`; it runs inside the request-id middleware."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Name the id on the current span, then run the request."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("request.id", correlation_id.get() or "")
        await self.app(scope, receive, send)
