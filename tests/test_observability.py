"""A served project with observability on: one request is one trace, its metrics in Prometheus.

The service runs as its docs/observability.md says, with two workers, traces exported over
OTLP/HTTP to the generated project's own receiver (`tests/otlp.py`, decoding with
opentelemetry-proto) and metrics on METRICS_PORT, scraped by a real Prometheus from Debian
(`apt-get install prometheus`), started here on a free port with a configuration of its own.
"""

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.figures import report
from tests.service import call, free_port, issue_key, launched, migrate, running, stop
from tests.tools import clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.observability

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
WORKERS, POOL_SIZE, REQUESTS = 2, 4, 40
USER_ROUTE = "/api/v1/users/{user_id}"
TRACE_ID, PARENT_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def documented_variables(project: Path) -> dict[str, str]:
    """The variables the generated docs/observability.md switches it on with."""
    page = (project / "docs" / "observability.md").read_text()
    section = page[page.index("# Observability") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "no sh block in the docs' Observability page"
    return dict(line.split("=", 1) for line in block.group(1).strip().splitlines())


def prometheus_config(project: Path, metrics_port: int) -> str:
    """The project's `deploy/prometheus.yml`, aimed at this test's port, scraping every second."""
    config = (project / "deploy" / "prometheus.yml").read_text()
    for old, new in {"app:9464": f"127.0.0.1:{metrics_port}", "15s": "1s"}.items():
        assert old in config, old
        config = config.replace(old, new)
    return config


def query(prometheus_port: int, promql: str) -> list[dict[str, Any]]:
    """The result of an instant query through Prometheus's HTTP API."""
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    status, body, _ = call("GET", url)
    assert status == 200, body
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value_when(
    prometheus_port: int, promql: str, done: Callable[[float], bool], timeout: float = 30
) -> float:
    """The query's single value once `done` holds of it (scrapes come every second)."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(prometheus_port, promql)
        value = float(result[0]["value"][1]) if len(result) == 1 else float("nan")
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture
def prometheus(project: Path, tmp_path: Path) -> Iterator[Callable[[int], int]]:
    """Start Prometheus scraping a metrics port; returns the port of its own API."""
    with ExitStack() as stack:

        def start(metrics_port: int) -> int:
            config = tmp_path / "prometheus.yml"
            config.write_text(prometheus_config(project, metrics_port))
            port, log = free_port(), tmp_path / "prometheus.log"
            command = [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ]
            process = stack.enter_context(
                launched(command, cwd=tmp_path, env=clean_environment(), log=log)
            )
            deadline = time.monotonic() + 30
            while not _ready(port):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            return port

        yield start


def _ready(port: int) -> bool:
    """Whether Prometheus answers its readiness endpoint (plain text, not JSON)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def receiver(project: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The generated project's OTLP receiver, run on its own: its endpoint and its spans file."""
    spans = tmp_path / "spans.jsonl"
    process = subprocess.Popen(
        [project / ".venv" / "bin" / "python", "-m", "tests.otlp", spans],
        cwd=project,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    with process, process.stdout:
        try:
            yield process.stdout.readline().strip(), spans
        finally:
            process.terminate()


@pytest.fixture(scope="module")
def project(rendered: Callable[[str], Path]) -> Path:
    """The default project, installed."""
    project = rendered("defaults")
    uv_sync(project)
    return project


def test_one_request_is_one_trace_and_prometheus_sums_every_worker(
    project: Path,
    postgres: Any,
    prometheus: Callable[[int], int],
    receiver: tuple[str, Path],
    tmp_path: Path,
) -> None:
    endpoint, spans_file = receiver
    command = str(project / ".venv" / "bin" / package_of(project))
    port, metrics_port = free_port(), free_port()
    temporary = tmp_path / "tmp"  # where `serve` makes the workers' metrics directory
    temporary.mkdir()
    variables = documented_variables(project)
    assert variables.keys() >= {"OTEL_EXPORTER_OTLP_ENDPOINT", "METRICS_PORT"}
    ours = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "METRICS_PORT": str(metrics_port)}
    env = clean_environment(
        **{**variables, **ours},
        DATABASE_URL=postgres.create_database("observability"),
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        DATABASE_POOL_SIZE=str(POOL_SIZE),
        TMPDIR=str(temporary),
        OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: spans leave soon after each request
        LOG_FORMAT="json",
    )
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    migrated = migrate(command, project, env)
    assert migrated.returncode == 0, migrated.stderr
    ready_url = f"{base}/health/ready"
    with running([command, "serve"], cwd=project, env=env, ready_url=ready_url, log=log) as service:
        prometheus_port = prometheus(metrics_port)
        key = issue_key(command, project, env, "read", "write", name="load")
        status, user, _ = call("POST", f"{base}/api/v1/users", {"email": "o@example.com"}, key)
        assert status == 201, user
        item = f"{base}/api/v1/users/{user['id']}"
        for _ in range(REQUESTS - 1):  # each on a new connection: both workers take some
            assert call("GET", item, headers=key)[0] == 200
        # The traced request is its key's first: the worker looks the key up on the writer,
        # then reads the user on the reader.
        fresh = issue_key(command, project, env, "read", name="traced")
        traceparent = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", **fresh}
        status, _, headers = call("GET", item, headers=traceparent)
        assert status == 200

        histograms = temporary.glob("prometheus-*/histogram_*.db")
        recorded_by = {path.name.rsplit("_", 1)[-1] for path in histograms}
        assert len(recorded_by) == WORKERS, f"every worker served some: {sorted(recorded_by)}"
        counted = (
            "sum(http_server_request_duration_seconds_count"
            f'{{http_route="{USER_ROUTE}",http_request_method="GET",'
            'http_response_status_code="200"})'
        )
        assert value_when(prometheus_port, counted, lambda value: value >= REQUESTS) == REQUESTS
        pool = 'db_pool_size{pool="writer"}'
        assert value_when(prometheus_port, pool, lambda v: v == WORKERS * POOL_SIZE) == (
            WORKERS * POOL_SIZE
        ), "each worker's pool, summed"
        routes = {
            series["metric"]["http_route"]
            for series in query(prometheus_port, "http_server_request_duration_seconds_count")
        }
        assert USER_ROUTE in routes
        assert f"/api/v1/users/{user['id']}" not in routes, routes
        assert stop(service, signal.SIGTERM)  # the workers send their queued spans as they stop

    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    traced = [span for span in spans if span["trace_id"] == TRACE_ID]
    servers = [span for span in traced if span["kind"] == "SPAN_KIND_SERVER"]
    assert [span["parent_span_id"] for span in servers] == [PARENT_ID], traced
    server = servers[0]
    assert server["name"] == f"GET {USER_ROUTE}"
    assert server["service"] == variables["OTEL_SERVICE_NAME"]
    assert server["attributes"]["request.id"] == headers["x-request-id"]
    statements = [span for span in traced if span["kind"] == "SPAN_KIND_CLIENT"]
    assert {span["parent_span_id"] for span in statements} == {server["span_id"]}
    engines = {span["attributes"]["db.client.connection.pool.name"] for span in statements}
    assert engines == {"writer", "reader"}, statements

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["name"] == "access" and line["trace_id"] == TRACE_ID]
    assert len(access) == 1, "the request's one access line names its trace"
    assert access[0]["request_id"] == headers["x-request-id"]
    assert access[0]["span_id"] == server["span_id"]
    report(
        "observability, 2 workers",
        len(traced),
        "spans in the traced request",
        f"{len(spans)} spans exported in all; Prometheus counted {REQUESTS} requests",
    )


COUNT_WAIT_SECONDS = 5.0


def scraped_count(metrics_port: int, route: str) -> float:
    """The requests of `route` answered 200 that the metrics endpoint counts, every worker's."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    series = re.findall(r"^http_server_request_duration_seconds_count\{(.*)\} (\S+)$", text, re.M)
    wanted = (f'http_route="{route}"', 'http_response_status_code="200"')
    return sum(float(value) for labels, value in series if all(w in labels for w in wanted))


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_serve_with_one_worker_and_dev_count_every_request(
    project: Path, postgres: Any, tmp_path: Path, command: str
) -> None:
    executable = str(project / ".venv" / "bin" / package_of(project))
    port, metrics_port = free_port(), free_port()
    temporary = tmp_path / "tmp"  # where `dev` makes its worker's metrics directory
    temporary.mkdir()
    env = clean_environment(
        DATABASE_URL=postgres.create_database(f"metrics_{command}"),
        PORT=str(port),
        METRICS_PORT=str(metrics_port),
        WEB_CONCURRENCY="1",
        TMPDIR=str(temporary),
    )
    base = f"http://127.0.0.1:{port}"
    migrated = migrate(executable, project, env)
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / f"{command}.log"
    ready_url = f"{base}/health/ready"
    with running([executable, command], cwd=project, env=env, ready_url=ready_url, log=log):
        for _ in range(REQUESTS):
            assert call("GET", f"{base}/health/live")[0] == 200

        # A request is counted once its answer has been sent, so the client may read the last
        # answer a moment before the count includes it: wait for it, never past it.
        deadline = time.monotonic() + COUNT_WAIT_SECONDS
        while (counted := scraped_count(metrics_port, "/health/live")) < REQUESTS:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert counted == REQUESTS, log.read_text()


def test_the_shipped_prometheus_configuration_is_valid(project: Path) -> None:
    run(PROMTOOL, "check", "config", "deploy/prometheus.yml", cwd=project)
