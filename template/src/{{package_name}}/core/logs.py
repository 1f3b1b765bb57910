"""One logging set-up for the service and uvicorn, every line stamped with its request's id.

JSON lines in production, readable lines in development (`LOG_FORMAT`). With tracing on, each
line also names the trace and span it was written in, so a log line leads to its trace.

`logging_config()` returns a `dictConfig` dictionary; `serve` and `dev` hand it to uvicorn,
which applies it in every worker process.
"""

import logging
from typing import Any, Literal

from asgi_correlation_id import correlation_id
from opentelemetry import trace

LogFormat = Literal["json", "console"]

_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
_CONSOLE = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"
_TRACED_JSON_FIELDS = (
    "%(asctime)s %(levelname)s %(name)s %(request_id)s %(trace_id)s %(span_id)s %(message)s"
)
_TRACED_CONSOLE = (
    "%(asctime)s %(levelname)-7s [%(request_id)s trace=%(trace_id)s span=%(span_id)s] "
    "%(name)s: %(message)s"
)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's id, or "-" outside requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record; never drop it."""
        record.request_id = correlation_id.get() or "-"
        return True


class TraceContextFilter(logging.Filter):
    """Stamp each record with the current span's trace and span ids, or "-" outside spans."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `trace_id` and `span_id` as W3C hex, as trace back ends show them."""
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        else:
            record.trace_id = record.span_id = "-"
        return True


def logging_config(
    level: str = "INFO",
    log_format: LogFormat = "json",
    *,
    echo_sql: bool = False,
    traces: bool = False,
) -> dict[str, Any]:
    """Logging for the root logger, uvicorn's loggers and ours, through one handler.

    `echo_sql` logs every statement (DATABASE_ECHO) through the same handler, as JSON too.
    `traces` adds each line's trace and span ids (TRACES_ENABLED).
    """
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": _TRACED_JSON_FIELDS if traces else _JSON_FIELDS,
        }
        if log_format == "json"
        else {"format": _TRACED_CONSOLE if traces else _CONSOLE}
    )
    filters: dict[str, Any] = {"request_id": {"()": RequestIdFilter}}
    if traces:
        filters["trace_context"] = {"()": TraceContextFilter}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": filters,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": list(filters),
                "formatter": "default",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's loggers go through the root handler; its access log gives way to ours,
            # which also knows the route template and the duration.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            "sqlalchemy.engine": {"level": "INFO" if echo_sql else "WARNING"},
        },
    }
