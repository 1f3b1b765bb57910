"""The service's Prometheus metrics, and the endpoint that serves every worker's together.

Each worker process records its own; with several workers, `serve` gives them a directory of
their own (PROMETHEUS_MULTIPROC_DIR, set before any worker starts) and its endpoint, in the
parent process, adds their files up, so a scrape counts every worker, whichever answered.
Labels are bounded: methods, route templates, statuses, pool names and error kinds, never a
path or a value.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

REQUEST_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "How long requests took, by method, route template and status.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=DURATION_BUCKETS,
)
ACTIVE_REQUESTS = Gauge(
    "http_server_active_requests",
    "Requests being served.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "db_pool_size",
    "Connections each pool keeps, per engine.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out",
    "Connections in use, per engine.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "db_pool_overflow",
    "Connections open beyond the pool size (DATABASE_MAX_OVERFLOW), per engine.",
    ["pool"],
    multiprocess_mode="livesum",
)
TURNSTILE_WAITING = Gauge(
    "db_turnstile_waiting",
    "Units of work waiting for a connection, per engine.",
    ["pool"],
    multiprocess_mode="livesum",
)
TURNSTILE_WAIT = Histogram(
    "db_turnstile_wait_seconds",
    "How long units of work that found every connection busy waited, per engine.",
    ["pool"],
    buckets=DURATION_BUCKETS,
)
DATABASE_ERRORS = Counter(
    "db_errors",
    "Database failures by the class the error contract gives them.",
    ["kind"],
)


def prepare_worker_directory() -> Path:
    """A new, empty directory for the workers' files, named in the environment they inherit.

    It is made under TMPDIR (or /tmp) and removed at exit. One of PROMETHEUS_MULTIPROC_DIR's
    own is not reused: files a previous run left there would count again.
    """
    directory = Path(tempfile.mkdtemp(prefix="prometheus-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MULTIPROCESS_DIR] = str(directory)
    return directory


def serve_metrics(host: str, port: int, *, workers_apart: bool) -> WSGIServer:
    """Serve the metrics on `host:port` from a thread of this process, until it exits.

    `workers_apart`: the app runs in other processes (several workers, or `dev`'s reloader),
    which then record into files this endpoint adds up; else the app runs in this one.
    """
    if workers_apart:
        registry = CollectorRegistry()
        directory = str(prepare_worker_directory())
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server


def worker_stopped() -> None:
    """Drop this process's gauges from the sums: a stopped worker serves nothing."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
