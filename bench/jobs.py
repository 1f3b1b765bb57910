"""`nox -s bench_jobs`: how many jobs per second the generated worker runs, with one and two.

Renders the default project with `include_jobs`, migrates a throwaway PostgreSQL and seeds
USERS users. Each round starts the workers (`<package> worker`, shipped settings:
WORKER_CONCURRENCY=4, JSON logs at INFO) on an empty queue, fills it with JOBS jobs of the
example's `welcome_user` task (a read of the user through the reader, a log line) in one
transaction, and times the drain from that commit until no job is left queued or running;
again with WORKER_CONCURRENCY=8. Prints jobs/s and the workers' CPU per job (from /proc), and
the median of ROUNDS rounds.
"""

import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.run import USERS, cpu_seconds, roomy_postgres, seeded
from tests.conftest import render, snapshot_template
from tests.service import launched
from tests.tools import uv_sync

JOBS, ROUNDS, WORKER_COUNTS = 20_000, 3, (1, 2)
CONCURRENCIES = (4, 8)  # WORKER_CONCURRENCY as shipped, and twice that
JOBS_ANSWERS = {"project_name": "Demo Service", "auth": "none", "include_jobs": True}
FILL = (
    "INSERT INTO pgqueuer (priority, entrypoint, status, payload) "
    "SELECT 0, 'welcome_user', 'queued', "
    "convert_to('{{\"user_id\": ' || (n % {users} + 1) || '}}', 'UTF8') "
    "FROM generate_series(1, {jobs}) AS n"
)
LEFT = "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
SETTLE_SECONDS = 3.0  # the workers listen before the queue is filled


def drain(postgres: Any, database: str, timeout: float = 600.0) -> float:
    """Seconds from now until no job is queued or running."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if postgres.psql(LEFT, database=database).strip() == "0":
            return time.perf_counter() - started
        time.sleep(0.2)  # each look is a psql process: few, on 2 cores
    raise RuntimeError(f"the queue did not drain in {timeout} s")


def one_round(
    postgres: Any,
    project: Path,
    bin_dir: Path,
    env: dict[str, str],
    workers: int,
    concurrency: int,
    log: Path,
) -> dict[str, Any]:
    """Start `workers` worker processes, fill the queue, time the drain."""
    env = {**env, "WORKER_CONCURRENCY": str(concurrency)}
    with ExitStack() as stack:
        pids = [
            stack.enter_context(
                launched(
                    [str(bin_dir / "demo_service"), "worker"],
                    cwd=project,
                    env=env,
                    log=log.with_suffix(f".{number}.log"),
                )
            ).pid
            for number in range(workers)
        ]
        time.sleep(SETTLE_SECONDS)
        cpu_before = sum(map(cpu_seconds, pids))
        postgres.psql(FILL.format(users=USERS, jobs=JOBS), database="jobs")
        seconds = drain(postgres, "jobs")
        cpu = sum(map(cpu_seconds, pids)) - cpu_before
    postgres.psql("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics", database="jobs")
    return {
        "workers": workers,
        "concurrency": concurrency,
        "jobs": JOBS,
        "seconds": round(seconds, 2),
        "jobs_per_second": round(JOBS / seconds, 1),
        "worker_cpu_us_per_job": round(cpu * 1e6 / JOBS, 1),
    }


def main() -> None:
    """Run the rounds and print their figures."""
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keel-jobs-")))
        postgres = stack.enter_context(roomy_postgres())
        template = snapshot_template(work / "keel")
        project = render(template, work / "service", JOBS_ANSWERS)
        bin_dir = uv_sync(project)
        env = seeded(postgres, "jobs", project, bin_dir)
        for round_ in range(ROUNDS):
            for concurrency in CONCURRENCIES:
                for workers in WORKER_COUNTS:
                    log = work / f"worker-{workers}-{concurrency}-{round_}.log"
                    result = one_round(postgres, project, bin_dir, env, workers, concurrency, log)
                    results.append(result)
                    print(json.dumps(result), flush=True)
    print("\nworkers  concurrency  jobs/s (median)  worker CPU µs per job (median)")
    for concurrency in CONCURRENCIES:
        for workers in WORKER_COUNTS:
            runs = [
                result
                for result in results
                if (result["workers"], result["concurrency"]) == (workers, concurrency)
            ]
            rate = statistics.median(result["jobs_per_second"] for result in runs)
            cpu = statistics.median(result["worker_cpu_us_per_job"] for result in runs)
            print(f"{workers:>7}  {concurrency:>11}  {rate:>15,.0f}  {cpu:>30,.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
