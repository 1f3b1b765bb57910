"""`nox -s bench`: the generated service against the raw asyncpg baseline, in one run.

Starts a throwaway PostgreSQL, renders and installs the default project, migrates it, seeds
10,000 users, then serves the project (`<package> serve`, one worker, shipped settings: request
ids, access logs and error handlers on) and the baseline (`bench/baseline.py`) side by side on
the same database. wrk drives each at 64 connections, GET and POST, 10 s after a warm-up,
alternating baseline and service twice. Prints a table, one JSON line per run and the ratios.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.wrk import Report, find_wrk, run_wrk
from tests.conftest import render, snapshot_template
from tests.local_postgres import load
from tests.service import PeakSessions, free_port, running
from tests.tools import UV, clean_environment, run, uv_sync

CONNECTIONS, SECONDS, WARM_UP, ROUNDS, USERS = 64, 10, 3, 2, 10_000
ENDPOINTS = {"GET": "get.lua", "POST": "post.lua"}
SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
SERVICE_SESSIONS = SESSIONS + "'demo_service-%'"
BASELINE_SESSIONS = SESSIONS + "'baseline'"
# The service's shipped DATABASE_POOL_SIZE (no overflow); the baseline gets one pool that size.
POOL_SIZE = 10
# The most connections each may open: the service has a writer pool and a reader pool.
CONNECTION_LIMITS = {"service": 2 * POOL_SIZE, "baseline": POOL_SIZE}


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory a process has had (Linux VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def timed(figures: dict[str, float], name: str) -> Iterator[None]:
    """Record how long the block took, in seconds."""
    started = time.perf_counter()
    yield
    figures[name] = time.perf_counter() - started


def prepare(work: Path, figures: dict[str, float]) -> tuple[Path, Path]:
    """Render, install and test the default project; return it and its bin folder."""
    template = snapshot_template(work / "keel")
    with timed(figures, "copy to green suite (s)"):
        with timed(figures, "render (s)"):
            project = render(template, work / "service", {"project_name": "Demo Service"})
        bin_dir = uv_sync(project)
        with timed(figures, "generated suite (s)"):
            run(UV, "run", "--python", sys.executable, "pytest", "-q", cwd=project)
    return project, bin_dir


def measure(
    name: str, port: int, pid: int, postgres: Any, sessions: str, endpoint: str, round_: int
) -> dict[str, Any]:
    """One wrk run against one server; returns its figures."""
    watcher = PeakSessions(postgres, sessions, database="bench")
    watcher.start()
    env = {**os.environ, "USERS": str(USERS), "RUN": f"{name}-{round_}-{time.time_ns()}"}
    report: Report = run_wrk(
        f"http://127.0.0.1:{port}", ENDPOINTS[endpoint], SECONDS, CONNECTIONS, env
    )
    watcher.done.set()
    watcher.join()
    return {
        "server": name,
        "endpoint": endpoint,
        "round": round_,
        "rps": round(report.requests_per_second, 1),
        "p50_ms": round(report.p50_ms, 2),
        "p99_ms": round(report.p99_ms, 2),
        "requests": report.requests,
        "non_2xx": report.non_2xx,
        "socket_errors": report.socket_errors,
        "peak_rss_mb": round(peak_rss_mb(pid), 1),
        "db_connections": watcher.peak,
        "db_connection_limit": CONNECTION_LIMITS[name],
    }


def main() -> None:
    """Run the whole benchmark and print its figures."""
    find_wrk()
    figures: dict[str, float] = {}
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keel-bench-")))
        postgres = stack.enter_context(load().LocalPostgres())
        project, bin_dir = prepare(work, figures)
        database = postgres.create_database("bench")
        env = clean_environment(DATABASE_URL=database)
        run(bin_dir / "demo_service", "migrate", cwd=project, env=env)
        postgres.psql(
            "INSERT INTO users (email, full_name) SELECT 'seed' || n || '@example.com', "  # noqa: S608
            f"'Seed ' || n FROM generate_series(1, {USERS}) AS n",  # USERS is a constant
            database="bench",
        )
        service_port, baseline_port = free_port(), free_port()
        service = stack.enter_context(
            running(
                [str(bin_dir / "demo_service"), "serve"],
                cwd=project,
                env={**env, "PORT": str(service_port), "WEB_CONCURRENCY": "1"},
                ready_url=f"http://127.0.0.1:{service_port}/health/ready",
                log=work / "service.log",
            )
        )
        baseline = stack.enter_context(
            running(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.baseline:app",
                    "--port",
                    str(baseline_port),
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                cwd=Path(__file__).parent.parent,
                env={
                    **os.environ,
                    "BASELINE_DATABASE_URL": database,
                    "BASELINE_POOL_SIZE": str(POOL_SIZE),
                },
                ready_url=f"http://127.0.0.1:{baseline_port}/api/v1/users/1",
                log=work / "baseline.log",
            )
        )
        servers = {
            "baseline": (baseline_port, baseline.pid, BASELINE_SESSIONS),
            "service": (service_port, service.pid, SERVICE_SESSIONS),
        }
        for port, _, _ in servers.values():  # warm-up, not recorded
            for script in ENDPOINTS.values():
                run_wrk(f"http://127.0.0.1:{port}", script, WARM_UP, CONNECTIONS, dict(os.environ))
        for round_ in range(1, ROUNDS + 1):
            for endpoint in ENDPOINTS:
                for name, (port, pid, sessions) in servers.items():
                    result = measure(name, port, pid, postgres, sessions, endpoint, round_)
                    results.append(result)
                    print(json.dumps(result), flush=True)
    report(results, figures)


def report(results: list[dict[str, Any]], figures: dict[str, float]) -> None:
    """Print the table of runs, the service/baseline ratios and the workflow timings."""
    print(
        f"\n{'server':9} {'endpoint':8} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'sock err':>8} {'RSS MiB':>8} {'db conns':>8}"
    )
    for r in results:
        print(
            f"{r['server']:9} {r['endpoint']:8} {r['round']:>5} {r['rps']:>9.0f} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non_2xx']:>8} {r['socket_errors']:>8} "
            f"{r['peak_rss_mb']:>8.1f} {r['db_connections']:>5}/{r['db_connection_limit']:<2}"
        )
    print()
    rps = {(r["server"], r["endpoint"], r["round"]): r["rps"] for r in results}
    for endpoint in ENDPOINTS:
        ratios = []
        for round_ in range(1, ROUNDS + 1):
            ratio = rps["service", endpoint, round_] / rps["baseline", endpoint, round_]
            ratios.append(ratio)
            print(json.dumps({"endpoint": endpoint, "round": round_, "ratio": round(ratio, 3)}))
        print(f"{endpoint}: service/baseline = {statistics.median(ratios):.3f} (target >= 0.30)")
    for name, seconds in figures.items():
        print(f"{name}: {seconds:.1f}")


if __name__ == "__main__":
    main()
