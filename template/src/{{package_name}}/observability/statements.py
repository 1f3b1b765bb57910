"""A client span for each statement an engine runs, under the span of the request that ran it.

Listens to the engine's own events, so each engine is traced on its own (the writer, the
reader) and each statement once, prepared or not. A span holds the statement's text with its
placeholders, never its values; a failure is named by its SQLSTATE, never by the driver's
message, which quotes the offending values.
"""

from typing import Any

from opentelemetry.trace import SpanKind, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

_SPAN = "_statement_span"


class StatementSpans:
    """Start a span before each statement of an engine and end it after, or on its failure."""

    def __init__(self, engine: Engine, tracer: Tracer, pool_name: str) -> None:
        """Trace `engine`'s statements with `tracer`; `pool_name` tells the engines apart."""
        url = engine.url
        self.tracer = tracer
        self.database = url.database or ""
        self.attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.namespace": self.database,
            "db.client.connection.pool.name": pool_name,
            "server.address": url.host or str(url.query.get("host", "")),
        }
        if url.port:
            self.attributes["server.port"] = url.port
        event.listen(engine, "before_cursor_execute", self.started)
        event.listen(engine, "after_cursor_execute", self.finished)
        event.listen(engine, "handle_error", self.failed)

    def started(
        self, connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, *_: Any
    ) -> None:
        """Open the statement's span as a child of the current one."""
        operation = statement.split(maxsplit=1)[0].upper() if statement.strip() else "SQL"
        span = self.tracer.start_span(
            f"{operation} {self.database}".rstrip(),
            kind=SpanKind.CLIENT,
            attributes=self.attributes,
        )
        if span.is_recording():
            span.set_attribute("db.operation.name", operation)
            span.set_attribute("db.query.text", statement)
        setattr(context, _SPAN, span)

    def finished(
        self, connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, *_: Any
    ) -> None:
        """End the statement's span."""
        span = getattr(context, _SPAN, None)
        if span is not None:
            span.end()

    def failed(self, exception_context: ExceptionContext) -> None:
        """End the span of a failed statement, marked with its SQLSTATE."""
        span = getattr(exception_context.execution_context, _SPAN, None)
        if span is None:
            return
        error = exception_context.original_exception
        code = str(getattr(error, "sqlstate", None) or type(error).__name__)
        span.set_attribute("db.response.status_code", code)
        span.set_attribute("error.type", code)
        span.set_status(StatusCode.ERROR)
        span.end()
