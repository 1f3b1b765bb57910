"""`<package> serve` with FastAPI's own telemetry at its defaults, as the service shipped before.

Run with the project's Python and this repository on PYTHONPATH. With no OpenTelemetry SDK
configured, FastAPI's telemetry runs on every request against the no-op providers.
"""

from typing import Any

from demo_service import cli, main  # type: ignore[import-not-found]  # the rendered project


def with_fastapi_defaults(app: Any) -> Any:
    """`app` with its telemetry settings put back to FastAPI's defaults."""
    defaults = {"tracing": True, "metrics": True, "logs": True, "operation_spans": True}
    app._telemetry.update(defaults)  # the settings FastAPI(telemetry=...) took, private
    return app


def create_app(*args: Any) -> Any:
    """The project's app (as `main.create_app` builds it) with FastAPI's telemetry defaults."""
    return with_fastapi_defaults(main.create_app(*args))


if __name__ == "__main__":
    cli.APP_FACTORY = "bench.fastapi_defaults:create_app"
    cli.main(["serve"])
