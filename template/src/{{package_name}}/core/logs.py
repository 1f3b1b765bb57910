"""One logging set-up for the service and uvicorn, every line stamped with its request's id.

JSON lines in production, readable lines in development (`LOG_FORMAT`).

`logging_config()` returns a `dictConfig` dictionary; `serve` and `dev` hand it to uvicorn,
which applies it in every worker process.
"""

import logging
from typing import Any, Literal

from asgi_correlation_id import correlation_id

LogFormat = Literal["json", "console"]

_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
_CONSOLE = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's id, or "-" outside requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` to the record; never drop it."""
        record.request_id = correlation_id.get() or "-"
        return True


def logging_config(
    level: str = "INFO", log_format: LogFormat = "json", *, echo_sql: bool = False
) -> dict[str, Any]:
    """Logging for the root logger, uvicorn's loggers and ours, through one handler.

    `echo_sql` logs every statement (DATABASE_ECHO) through the same handler, as JSON too.
    """
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": _JSON_FIELDS}
        if log_format == "json"
        else {"format": _CONSOLE}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["request_id"],
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
