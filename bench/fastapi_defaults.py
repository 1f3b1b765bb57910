"""`<package> serve` with FastAPI's own telemetry at its defaults, as the service shipped before.

Run with the project's Python and this repository on PYTHONPATH. With no OpenTelemetry SDK
configured, FastAPI's telemetry runs on every request against the no-op providers.
"""

from typing import Any

from demo_service import cli, main  # type: ignore[import-not-found]  # the rendered project


def create_app() -> Any:
    """The project's app, its telemetry settings put back to FastAPI's defaults."""
    app = main.create_app()
    defaults = {"tracing": True, "metrics": True, "logs": True, "operation_spans": True}
    app._telemetry.update(defaults)  # the settings FastAPI(telemetry=...) took, private
    return app


if __name__ == "__main__":
    cli.APP_FACTORY = "bench.fastapi_defaults:create_app"
    cli.main(["serve"])
