"""`nox -s bench`: the generated service against the limit and a typical peer, in one run.

Starts a throwaway PostgreSQL, renders and installs the default project, migrates it, seeds
10,000 users, then serves side by side, each on a database of its own seeded alike (one server's
inserts would make another's statements dearer): the project (`<package> serve`, one worker,
shipped settings: request ids, access logs, error handlers and API keys on); the strict baseline
(`bench/strict.py`: the fastest correct raw version of the two endpoints, the limit every ratio
is taken against); the reference baseline (`bench/baseline.py`: the same with asyncpg's default
pool reset and the standard library's json); and the peer (`bench/peer.py`: the endpoints as
tutorials and popular templates write them, FastAPI with an ORM session per request). The same
project rendered with `auth=none` ("open") and with `auth=oidc` ("oidc", checking tokens from
its local issuer, `devtools/identity_provider.py`) is served too, on databases of their own, to
price authentication. To price observability, the default project is served twice more: with
FastAPI's own telemetry at its defaults ("fastapi", `bench/fastapi_defaults.py`: how the service
shipped before it was switched off) and with traces and metrics on ("exporting": every request
traced, spans sent over OTLP to `bench/otlp_sink.py`, metrics recorded). The default project
rendered for Python 3.11 ("python3.11") prices the interpreter against the default 3.13; every
server of the run, the raw ones included, runs on the project's Python. wrk drives each at 64
connections, GET and POST, 10 s after a warm-up, alternating the servers twice; the service's
requests carry an API key issued by its CLI, the oidc one's a token. Then the service and the
strict baseline again with two worker processes each. Prints a table, one JSON line per run, the
ratios to the strict baseline and the server CPU per request of each (judge changes by CPU:
throughput varies 10-15% between identical runs); then, as wrk cannot tell a few percent apart,
the instructions callgrind counts for an in-process request with FastAPI's telemetry off and at
its defaults (`bench/asgi_requests.py`).
"""

import json
import os
import re
import shutil
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
from tests.service import PeakSessions, free_port, launched, running
from tests.tools import UV, clean_environment, run, uv_sync

CONNECTIONS, SECONDS, WARM_UP, ROUNDS, USERS = 64, 10, 3, 2, 10_000
ENDPOINTS = {"GET": "get.lua", "POST": "post.lua"}
SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
SERVICE_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench'"
OPEN_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_open'"
OIDC_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_oidc'"
FASTAPI_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_fastapi'"
EXPORTING_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_exporting'"
OLDEST_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_oldest'"
BASELINE_SESSIONS = SESSIONS + "'baseline'"
# Both strict servers name their sessions "strict": each is told apart by its database.
STRICT_SESSIONS = SESSIONS + "'strict' AND datname = 'bench_strict'"
STRICT_2_SESSIONS = SESSIONS + "'strict' AND datname = 'bench_strict_two'"
PEER_SESSIONS = SESSIONS + "'peer'"
SERVICE_2_SESSIONS = SESSIONS + "'demo_service-%' AND datname = 'bench_two'"
# The service's shipped DATABASE_POOL_SIZE (no overflow); the baseline gets one pool that size.
POOL_SIZE = 10
# The most connections each may open: the service has a writer pool and a reader pool, and
# readiness one connection per role (db/readiness.py).
PROJECT_LIMIT = 2 * POOL_SIZE + 2
CONNECTION_LIMITS = {
    "service": PROJECT_LIMIT,
    "open": PROJECT_LIMIT,
    "oidc": PROJECT_LIMIT,
    "fastapi": PROJECT_LIMIT,
    "exporting": PROJECT_LIMIT,
    "python3.11": PROJECT_LIMIT,
    "baseline": POOL_SIZE,
    "strict": POOL_SIZE,
    "peer": POOL_SIZE,
    "service-2w": 2 * PROJECT_LIMIT,
    "strict-2w": 2 * POOL_SIZE,
}
# What each server is, for the report.
LABELS = {
    "strict": "strict baseline: Starlette, asyncpg pool with a no-op reset, orjson (the limit)",
    "baseline": "reference baseline: the same with asyncpg's default reset and stdlib json",
    "peer": "peer: FastAPI + ORM session per request, as tutorials and templates write it",
    "service": "the generated service as shipped (API keys, request ids, access log)",
    "open": "the same with auth=none",
    "oidc": "the same with auth=oidc",
    "fastapi": "the service with FastAPI's own telemetry at its defaults",
    "exporting": "the service with traces and metrics on and exporting",
    "python3.11": "the service rendered for Python 3.11 (new projects get 3.13)",
    "service-2w": "the service, two worker processes",
    "strict-2w": "the strict baseline, two worker processes",
}
DEFAULTS = {"project_name": "Demo Service"}  # API keys, as `copier copy --defaults` gives
OPEN = {**DEFAULTS, "auth": "none"}  # the same project with no authentication
OIDC = {**DEFAULTS, "auth": "oidc"}  # and with bearer tokens from an OIDC issuer
OLDEST_PYTHON = {**DEFAULTS, "python_version": "3.11"}  # and on the oldest Python offered
# What the raw baselines import: the bench group's own lower bounds (pyproject.toml).
RAW_PACKAGES = (
    "asyncpg>=0.32.0",
    "httptools>=0.9.0",
    "starlette>=1.10.0",
    "uvicorn>=0.54.0",
    "uvloop>=0.23.0",
    "orjson>=3.13.0",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
INSTRUCTION_REQUESTS = 2000
API_INSTRUCTION_REQUESTS = 800


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) the processes of a server's group have used so far.

    A server runs in a process group of its own (`tests.service.launched`); one worker is one
    process, but a group counts whatever the server forks.
    """
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pid:  # its process group
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


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
            project = render(template, work / "service", DEFAULTS)
        bin_dir = uv_sync(project)
        with timed(figures, "generated suite (s)"):
            run(UV, "run", "pytest", "-q", cwd=project)
    return project, bin_dir


def find_valgrind() -> str:
    """The valgrind binary, or an error saying how to install it."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("the benchmark needs valgrind (apt-get install valgrind)")
    return valgrind


def instructions_per_request(project: Path, bin_dir: Path, mode: str) -> float:
    """Instructions one in-process `/health/live` request takes, counted by callgrind.

    Counts do not vary with the machine's load, so they show a difference of a few percent
    that wrk's CPU figures, 10-15% apart between identical runs, cannot.
    """
    valgrind = find_valgrind()
    env = clean_environment(PYTHONPATH=str(Path(__file__).parent.parent))
    counts = []
    for requests in (0, INSTRUCTION_REQUESTS):
        counted = run(
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            bin_dir / "python",
            *("-m", "bench.asgi_requests", mode, str(requests)),
            cwd=project,
            env=env,
        )
        total = re.search(r"Collected : (\d+)", counted.stderr)
        if total is None:
            raise RuntimeError(f"callgrind counted nothing:\n{counted.stderr}")
        counts.append(int(total.group(1)))
    return (counts[1] - counts[0]) / INSTRUCTION_REQUESTS


def instructions_per_api_request(
    project: Path, bin_dir: Path, env: dict[str, str], headers: dict[str, str], method: str
) -> float:
    """Instructions one in-process GET or POST of `/api/v1/users` takes, counted by callgrind.

    The app runs with the project's settings on its seeded database, logging as it would;
    `bench/api_requests.py` switches counting on after its warm-up, so only the requests are
    counted. The figure to judge a change of the hot path by: it does not move with the load.
    """
    counted = run(
        find_valgrind(),
        "--tool=callgrind",
        "--instr-atstart=no",
        "--callgrind-out-file=/dev/null",
        bin_dir / "python",
        *("-m", "bench.api_requests", method, str(API_INSTRUCTION_REQUESTS)),
        cwd=project,
        env={
            **env,
            "PYTHONPATH": str(Path(__file__).parent.parent),
            "BENCH_AUTHORIZATION": headers["Authorization"],
        },
    )
    total = re.search(r"Collected : (\d+)", counted.stderr)
    if total is None:
        raise RuntimeError(f"callgrind counted nothing:\n{counted.stderr}")
    return int(total.group(1)) / API_INSTRUCTION_REQUESTS


def roomy_postgres() -> Any:
    """The tests' throwaway PostgreSQL, with connections for every server's pools at once."""
    server: Any = load().LocalPostgres

    class Roomy(server):  # type: ignore[misc]
        def _server_settings(self) -> list[str]:
            # 5 projects x 22 connections, two workers x 22, three raw servers x 10, two workers x
            # 10, and the watchers: past 200.
            return [*super()._server_settings(), "max_connections=300"]

    return Roomy()


def prepare_variant(work: Path, name: str, answers: dict[str, str]) -> tuple[Path, Path]:
    """Render and install the project with other answers; return it and its bin folder."""
    project = render(work / "keel", work / name, answers)
    return project, uv_sync(project)


def issuer(stack: ExitStack, project: Path, bin_dir: Path, log: Path) -> dict[str, str]:
    """Serve the oidc project's local issuer until the stack closes; its settings and a token."""
    command = [str(bin_dir / "python"), "-m", "demo_service.devtools.identity_provider"]
    process = stack.enter_context(launched(command, cwd=project, env=clean_environment(), log=log))
    for _ in range(600):
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= 3:
            return dict(line.split("=", 1) for line in lines[:3])
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the issuer did not start; see {log}")


def seeded(
    postgres: Any, name: str, project: Path, bin_dir: Path, **settings: str
) -> dict[str, str]:
    """A new database migrated by the project and seeded with USERS users; the project's env."""
    env = clean_environment(DATABASE_URL=postgres.create_database(name), **settings)
    run(bin_dir / "demo_service", "migrate", cwd=project, env=env)
    postgres.psql(
        "INSERT INTO users (email, full_name) SELECT 'seed' || n || '@example.com', "  # noqa: S608
        f"'Seed ' || n FROM generate_series(1, {USERS}) AS n",  # USERS is a constant
        database=name,
    )
    return env


def issue_key(bin_dir: Path, project: Path, env: dict[str, str]) -> dict[str, str]:
    """A key to read and write from the project's own CLI; the header that carries it."""
    issued = run(
        bin_dir / "demo_service",
        *("api-key", "create", "--name", "bench", "--scope", "read", "--scope", "write"),
        cwd=project,
        env=env,
    )
    return {"Authorization": f"Bearer {issued.stdout.strip()}"}


def serve(
    stack: ExitStack,
    project: Path,
    bin_dir: Path,
    env: dict[str, str],
    log: Path,
    command: tuple[str, ...] = ("demo_service", "serve"),
    workers: int = 1,
) -> tuple[int, int]:
    """Serve a project until the stack closes; return its port and process id.

    `command` is run from the project's bin folder.
    """
    port = free_port()
    process = stack.enter_context(
        running(
            [str(bin_dir / command[0]), *command[1:]],
            cwd=project,
            env={**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers)},
            ready_url=f"http://127.0.0.1:{port}/health/ready",
            log=log,
        )
    )
    return port, process.pid


def raw_venv(work: Path, bin_dir: Path) -> Path:
    """A virtualenv for the raw servers on the project's interpreter; return its bin folder."""
    venv = work / "raw"
    python = Path(os.path.realpath(bin_dir / "python"))
    run(UV, "venv", "--quiet", "--python", str(python), str(venv), cwd=work)
    run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin" / "python"),
        *RAW_PACKAGES,
        cwd=work,
    )
    return venv / "bin"


def raw_server(
    stack: ExitStack,
    name: str,
    env: dict[str, str],
    work: Path,
    bin_dir: Path,
    workers: int = 1,
) -> tuple[int, int]:
    """Serve `bench/<name>.py` until the stack closes; return its port and process id.

    uvicorn serves it as the project is served (uvloop, httptools, no access log), on the
    seeded database of `env`, with the Python of `bin_dir`: `raw_venv`'s for the baselines, the
    project's for the peer, so that every server of a run shares one interpreter.
    """
    port = free_port()
    url = env["DATABASE_URL"]
    process = stack.enter_context(
        running(
            [
                str(bin_dir / "python"),
                *("-m", "uvicorn", f"bench.{name}:app", "--port", str(port)),
                *("--workers", str(workers), "--loop", "uvloop", "--http", "httptools"),
                *("--no-access-log", "--log-level", "warning"),
            ],
            cwd=Path(__file__).parent.parent,
            env={
                **os.environ,
                "BASELINE_DATABASE_URL": url,
                "BASELINE_POOL_SIZE": str(POOL_SIZE),
                "PEER_DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://", 1),
                "PEER_POOL_SIZE": str(POOL_SIZE),
                "PYTHONPATH": str(Path(__file__).parent.parent),
            },
            ready_url=f"http://127.0.0.1:{port}/api/v1/users/1",
            log=work / f"{name}-{workers}.log",
        )
    )
    return port, process.pid


def measure(
    name: str,
    port: int,
    pid: int,
    postgres: Any,
    sessions: str,
    endpoint: str,
    round_: int,
    headers: dict[str, str],
) -> dict[str, Any]:
    """One wrk run against one server; returns its figures."""
    watcher = PeakSessions(postgres, sessions, database="bench")
    watcher.start()
    env = {**os.environ, "USERS": str(USERS), "RUN": f"{name}-{round_}-{time.time_ns()}"}
    cpu_before = cpu_seconds(pid)
    report: Report = run_wrk(
        f"http://127.0.0.1:{port}", ENDPOINTS[endpoint], SECONDS, CONNECTIONS, env, headers
    )
    cpu = cpu_seconds(pid) - cpu_before
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
        "cpu_us_per_request": round(cpu * 1e6 / max(report.requests, 1), 1),
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
        postgres = stack.enter_context(roomy_postgres())
        project, bin_dir = prepare(work, figures)
        open_project, open_bin_dir = prepare_variant(work, "open", OPEN)
        oidc_project, oidc_bin_dir = prepare_variant(work, "oidc", OIDC)
        oldest_project, oldest_bin_dir = prepare_variant(work, "oldest", OLDEST_PYTHON)
        env = seeded(postgres, "bench", project, bin_dir)
        open_env = seeded(postgres, "bench_open", open_project, open_bin_dir)
        issued_by = issuer(stack, oidc_project, oidc_bin_dir, work / "issuer.log")
        token = {"Authorization": f"Bearer {issued_by.pop('API_KEY')}"}
        oidc_env = seeded(postgres, "bench_oidc", oidc_project, oidc_bin_dir, **issued_by)
        # A key to read and write, as a client gets one; every request of every run sends it.
        headers = issue_key(bin_dir, project, env)
        service = serve(stack, project, bin_dir, env, work / "service.log")
        fastapi_env = {
            **seeded(postgres, "bench_fastapi", project, bin_dir),
            "PYTHONPATH": str(Path(__file__).parent.parent),
        }
        fastapi = serve(
            stack,
            project,
            bin_dir,
            fastapi_env,
            work / "fastapi.log",
            ("python", "-m", "bench.fastapi_defaults"),
        )
        sink_port = free_port()
        sink = [sys.executable, "-m", "bench.otlp_sink", str(sink_port)]
        stack.enter_context(
            launched(
                sink, cwd=Path(__file__).parent.parent, env=dict(os.environ), log=work / "sink.log"
            )
        )
        exporting_env = seeded(
            postgres,
            "bench_exporting",
            project,
            bin_dir,
            TRACES_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}",
            METRICS_PORT=str(free_port()),
        )
        exporting = serve(stack, project, bin_dir, exporting_env, work / "exporting.log")
        opened = serve(stack, open_project, open_bin_dir, open_env, work / "open.log")
        oidc = serve(stack, oidc_project, oidc_bin_dir, oidc_env, work / "oidc.log")
        # Databases of their own, like every server: the users one server's POSTs add would
        # make another's statements dearer.
        raw_bin_dir = raw_venv(work, bin_dir)
        baseline = raw_server(
            stack,
            "baseline",
            seeded(postgres, "bench_baseline", project, bin_dir),
            work,
            raw_bin_dir,
        )
        strict = raw_server(
            stack, "strict", seeded(postgres, "bench_strict", project, bin_dir), work, raw_bin_dir
        )
        peer_env = seeded(postgres, "bench_peer", project, bin_dir)
        peer = raw_server(stack, "peer", peer_env, work, bin_dir)
        # The same service on the oldest Python it offers, as projects from before 3.13 have it.
        oldest_env = seeded(postgres, "bench_oldest", oldest_project, oldest_bin_dir)
        oldest = serve(stack, oldest_project, oldest_bin_dir, oldest_env, work / "oldest.log")
        servers = {
            "strict": (*strict, STRICT_SESSIONS),
            "baseline": (*baseline, BASELINE_SESSIONS),
            "peer": (*peer, PEER_SESSIONS),
            "service": (*service, SERVICE_SESSIONS),
            "open": (*opened, OPEN_SESSIONS),
            "oidc": (*oidc, OIDC_SESSIONS),
            "fastapi": (*fastapi, FASTAPI_SESSIONS),
            "exporting": (*exporting, EXPORTING_SESSIONS),
            "python3.11": (*oldest, OLDEST_SESSIONS),
        }
        # Each server's credential: the baseline and the open project ignore theirs; the
        # telemetry variants have databases of their own, with keys of their own.
        credentials = {
            "strict": headers,
            "baseline": headers,
            "peer": headers,
            "service": headers,
            "open": headers,
            "oidc": token,
            "fastapi": issue_key(bin_dir, project, fastapi_env),
            "exporting": issue_key(bin_dir, project, exporting_env),
            "python3.11": issue_key(oldest_bin_dir, oldest_project, oldest_env),
        }
        for name, (port, _, _) in servers.items():  # warm-up, not recorded
            for script in ENDPOINTS.values():
                url = f"http://127.0.0.1:{port}"
                run_wrk(url, script, WARM_UP, CONNECTIONS, dict(os.environ), credentials[name])
        for round_ in range(1, ROUNDS + 1):
            for endpoint in ENDPOINTS:
                for name, (port, pid, sessions) in servers.items():
                    result = measure(
                        name, port, pid, postgres, sessions, endpoint, round_, credentials[name]
                    )
                    results.append(result)
                    print(json.dumps(result), flush=True)
        # Two worker processes each: the service (its own database) and the strict baseline.
        two_env = seeded(postgres, "bench_two", project, bin_dir)
        two = {
            "service-2w": (
                *serve(stack, project, bin_dir, two_env, work / "two.log", workers=2),
                SERVICE_2_SESSIONS,
            ),
            "strict-2w": (
                *raw_server(
                    stack,
                    "strict",
                    seeded(postgres, "bench_strict_two", project, bin_dir),
                    work,
                    raw_bin_dir,
                    workers=2,
                ),
                STRICT_2_SESSIONS,
            ),
        }
        two_headers = issue_key(bin_dir, project, two_env)
        for port, _, _ in two.values():
            for script in ENDPOINTS.values():
                url = f"http://127.0.0.1:{port}"
                run_wrk(url, script, WARM_UP, CONNECTIONS, dict(os.environ), two_headers)
        for round_ in range(1, ROUNDS + 1):
            for endpoint in ENDPOINTS:
                for name, (port, pid, sessions) in two.items():
                    result = measure(
                        name, port, pid, postgres, sessions, endpoint, round_, two_headers
                    )
                    results.append(result)
                    print(json.dumps(result), flush=True)
        for method in ENDPOINTS:
            figures[f"instructions per in-process {method} request"] = instructions_per_api_request(
                project, bin_dir, env, headers, method
            )
            figures[f"instructions per in-process {method} request, Python 3.11"] = (
                instructions_per_api_request(
                    oldest_project, oldest_bin_dir, oldest_env, credentials["python3.11"], method
                )
            )
        for mode in ("off", "defaults"):
            figures[f"instructions per /health/live request, telemetry {mode}"] = (
                instructions_per_request(project, bin_dir, mode)
            )
    report(results, figures)


def report(results: list[dict[str, Any]], figures: dict[str, float]) -> None:
    """Print the table of runs, the ratios to the strict baseline, what each feature costs."""
    for name, label in LABELS.items():
        print(f"{name:10} {label}")
    print(
        f"\n{'server':10} {'endpoint':8} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'sock err':>8} {'CPU µs/req':>10} {'RSS MiB':>8} {'db conns':>8}"
    )
    for r in results:
        print(
            f"{r['server']:10} {r['endpoint']:8} {r['round']:>5} {r['rps']:>9.0f} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non_2xx']:>8} {r['socket_errors']:>8} "
            f"{r['cpu_us_per_request']:>10.0f} {r['peak_rss_mb']:>8.1f} "
            f"{r['db_connections']:>5}/{r['db_connection_limit']:<2}"
        )
    print()
    rps = {(r["server"], r["endpoint"], r["round"]): r["rps"] for r in results}
    cpu = {(r["server"], r["endpoint"], r["round"]): r["cpu_us_per_request"] for r in results}
    p99 = {(r["server"], r["endpoint"], r["round"]): r["p99_ms"] for r in results}
    rounds = range(1, ROUNDS + 1)
    # Against the limit: requests/s and CPU per request, each as a ratio to the strict
    # baseline in the same round (CPU as strict/server, so both read "fraction of the limit").
    targets = {"GET": 0.25, "POST": 0.20}
    pairs = [(name, "strict") for name in ("baseline", "peer", "service", "open", "oidc")]
    pairs.append(("service-2w", "strict-2w"))
    for endpoint in ENDPOINTS:
        for name, limit in pairs:
            ratios = [rps[name, endpoint, n] / rps[limit, endpoint, n] for n in rounds]
            cpu_ratios = [cpu[limit, endpoint, n] / cpu[name, endpoint, n] for n in rounds]
            for round_, ratio in zip(rounds, ratios, strict=True):
                line = {"server": name, "endpoint": endpoint, "round": round_}
                print(json.dumps({**line, "ratio": round(ratio, 3)}))
            print(
                f"{endpoint}: {name}/{limit} = {statistics.median(ratios):.3f} in requests/s, "
                f"{statistics.median(cpu_ratios):.3f} in CPU per request "
                f"({statistics.median(cpu[name, endpoint, n] for n in rounds):.0f} µs against "
                f"{statistics.median(cpu[limit, endpoint, n] for n in rounds):.0f} µs; "
                f"target >= {targets[endpoint]:.2f})"
            )
    # What each mode costs the server: CPU per request, in the same run, as the medians.
    for endpoint in ENDPOINTS:
        plain = statistics.median(cpu["open", endpoint, round_] for round_ in rounds)
        for name, mode in (("service", "API key"), ("oidc", "OIDC token")):
            checked = statistics.median(cpu[name, endpoint, round_] for round_ in rounds)
            print(
                f"{endpoint}: server CPU per request, {mode} {checked:.0f} µs vs auth=none "
                f"{plain:.0f} µs ({(checked / plain - 1) * 100:+.1f}%)"
            )
    # What observability costs: off (as shipped), FastAPI's telemetry at its defaults (as it
    # shipped before), traces and metrics on and exporting.
    for endpoint in ENDPOINTS:
        off, defaults, exporting = (
            statistics.median(cpu[name, endpoint, round_] for round_ in rounds)
            for name in ("service", "fastapi", "exporting")
        )
        print(
            f"{endpoint}: server CPU per request, telemetry off {off:.0f} µs, FastAPI's defaults "
            f"{defaults:.0f} µs ({(defaults / off - 1) * 100:+.1f}%), traces and metrics "
            f"exporting {exporting:.0f} µs ({(exporting / off - 1) * 100:+.1f}%)"
        )
    # What the interpreter changes: the same service on 3.11 against the default 3.13.
    for endpoint in ENDPOINTS:
        newest, oldest = (
            (
                statistics.median(cpu[name, endpoint, round_] for round_ in rounds),
                statistics.median(p99[name, endpoint, round_] for round_ in rounds),
                statistics.median(rps[name, endpoint, round_] for round_ in rounds),
            )
            for name in ("service", "python3.11")
        )
        print(
            f"{endpoint}: the service on Python 3.13 (default) vs 3.11: server CPU per request "
            f"{newest[0]:.0f} vs {oldest[0]:.0f} µs ({(newest[0] / oldest[0] - 1) * 100:+.1f}%), "
            f"p99 {newest[1]:.1f} vs {oldest[1]:.1f} ms, requests/s {newest[2]:.0f} vs "
            f"{oldest[2]:.0f} ({(newest[2] / oldest[2] - 1) * 100:+.1f}%)"
        )
    off, defaults = (
        figures.pop(f"instructions per /health/live request, telemetry {mode}")
        for mode in ("off", "defaults")
    )
    print(
        f"instructions per in-process /health/live request (callgrind): telemetry off "
        f"{off:,.0f}, FastAPI's defaults {defaults:,.0f} ({(defaults / off - 1) * 100:+.1f}%)"
    )
    for method in ENDPOINTS:
        count = figures.pop(f"instructions per in-process {method} request")
        on_3_11 = figures.pop(f"instructions per in-process {method} request, Python 3.11")
        print(
            f"instructions per in-process {method} /api/v1/users (callgrind): {count:,.0f} on "
            f"Python 3.13, {on_3_11:,.0f} on 3.11 ({(count / on_3_11 - 1) * 100:+.1f}%)"
        )
    for name, seconds in figures.items():
        print(f"{name}: {seconds:.1f}")


if __name__ == "__main__":
    main()
