"""A rolling deploy that fails no request: two instances behind HAProxy, through PgBouncer.

Every part is real and on loopback: Debian's HAProxy (`apt-get install haproxy`) balances two
`serve` processes of the default project, which reach one PostgreSQL through Debian's PgBouncer
in transaction mode (tests/bouncer.py, as the docs' "Behind PgBouncer" says). The instances
run with the settings of the rendered production overlay (deploy/kubernetes), changing only
addresses, hosts and the password file's path.

Under a bounded load, each instance is replaced as Kubernetes replaces a pod: it leaves the
balancer's rotation (the endpoint removal), a pause (the preStop delay; HAProxy obeys at once,
so 1 s here stands for the manifests' 5 s), SIGTERM and the drain, a new instance on the same
address, its readiness, and back into rotation once HAProxy's own check sees it ready.
"""

import asyncio
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bouncer import Bouncer, bouncing, database_page
from tests.figures import report
from tests.load import Load, reads_and_writes, run_load
from tests.service import (
    PeakSessions,
    call,
    free_port,
    issue_key,
    launched,
    migrate,
    stop,
    wait_until_ready,
)
from tests.test_kubernetes import find, kustomize, project_slug
from tests.tools import clean_environment, package_of, uv_sync

pytestmark = pytest.mark.rolling

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONNECTIONS = 8  # the load's keep-alive connections to HAProxy
LOAD_LIMIT_SECONDS = 120.0  # the load stops by then whatever happens
SETTLE_SECONDS = 2.0  # load before the first replacement and after the last
PRE_STOP_SECONDS = 1.0
START_TIMEOUT_SECONDS = 10.0
SERVER_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"


@dataclass
class Instance:
    """One `serve` process and the HAProxy server that routes to it."""

    name: str
    port: int
    process: subprocess.Popen[str] | None = None


class Balancer:
    """HAProxy in front of the instances, driven through its runtime API (an admin socket)."""

    def __init__(self, folder: Path, port: int, instances: list[Instance]) -> None:
        """Write the configuration for these instances; `start` runs it."""
        self.folder, self.port, self.socket = folder, port, folder / "admin.sock"
        servers = "".join(f"    server {i.name} 127.0.0.1:{i.port} check\n" for i in instances)
        self.config = folder / "haproxy.cfg"
        self.config.write_text(
            "global\n"
            f"    stats socket {self.socket} mode 600 level admin\n"
            "    maxconn 1000\n"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 2s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            # A refused connection is tried again, on another instance; a request that reached
            # an instance never is (it may have written).
            "    retries 3\n"
            "    option redispatch\n"
            # The readiness probe of the manifests, from HAProxy: every 250 ms.
            "    option httpchk\n"
            "    http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host localhost\n"
            "    default-server inter 250ms fall 2 rise 2\n"
            "frontend web\n"
            f"    bind 127.0.0.1:{port}\n"
            "    default_backend app\n"
            "backend app\n"
            "    balance roundrobin\n" + servers
        )

    @contextmanager
    def running(self) -> Iterator["Balancer"]:
        """Run HAProxy in the foreground until the block ends."""
        log = (self.folder / "haproxy.log").open("w")
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not self.socket.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"HAProxy did not start:\n{(self.folder / 'haproxy.log').read_text()}"
                    )
                time.sleep(0.05)
            yield self
        finally:
            process.terminate()
            process.wait(10)
            log.close()

    def command(self, line: str) -> str:
        """Send one runtime API command; return HAProxy's answer."""
        with socket.socket(socket.AF_UNIX) as admin:
            admin.connect(str(self.socket))
            admin.sendall(line.encode() + b"\n")
            answer = b""
            while chunk := admin.recv(65536):
                answer += chunk
        return answer.decode()

    def status(self, server: str) -> dict[str, str]:
        """The server's row of `show stat` (status, total sessions, ...)."""
        lines = self.command("show stat").splitlines()
        names = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(names, line.split(","), strict=False))
            if row.get("pxname") == "app" and row.get("svname") == server:
                return row
        raise AssertionError(f"HAProxy reports no server {server}")

    def wait_for(self, server: str, status: str) -> None:
        """Wait until HAProxy reports the server in this status."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (seen := self.status(server)["status"]) != status:
            if time.monotonic() > deadline:
                raise AssertionError(f"{server} is {seen}, not {status}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def project(rendered: Callable[[str], Path]) -> Path:
    """The default project (API keys, the example API), installed."""
    project = rendered("defaults")
    uv_sync(project)
    return project


def production_settings(project: Path, folder: Path) -> dict[str, str]:
    """The settings of the production overlay's API pods: its ConfigMap and container env."""
    objects = kustomize(project, "production", folder)
    slug = project_slug(project)
    settings: dict[str, str] = find(objects, "ConfigMap", f"{slug}-settings")["data"]
    pod = find(objects, "Deployment", slug)["spec"]["template"]["spec"]
    return {**settings, **{item["name"]: item["value"] for item in pod["containers"][0]["env"]}}


def instance_environment(
    settings: dict[str, str], bouncer: Bouncer, password_file: Path, tmp: Path
) -> dict[str, str]:
    """The pods' settings on loopback: PgBouncer's address, the load balancer's host name."""
    url = bouncer.service_env["DATABASE_URL"]
    assert settings["DATABASE_URL"].rsplit("/", 1)[1] == url.rsplit("/", 1)[1]  # same database
    on_loopback = {
        "DATABASE_URL": url,
        "DATABASE_PASSWORD_FILE": str(password_file),
        "HOST": "127.0.0.1",
        # The load names the balancer by its address, as a client names the public host.
        "ALLOWED_HOSTS": f"{settings['ALLOWED_HOSTS']},127.0.0.1",
        "TMPDIR": str(tmp),
    }
    return clean_environment(**{**settings, **on_loopback})


@dataclass
class Replacement:
    """The times of one instance's replacement, in seconds."""

    drain: float  # SIGTERM to exit
    start: float  # the new process started to ready
    total: float  # out of rotation to back in


def test_a_rolling_deploy_through_haproxy_and_pgbouncer_fails_no_request(
    project: Path, tmp_path: Path
) -> None:
    command = str(project / ".venv" / "bin" / package_of(project))
    settings = production_settings(project, tmp_path / "rendered")
    with bouncing(database_page(project)) as bouncer, ExitStack() as stack:
        password_file = tmp_path / "database_password"
        password_file.write_text(bouncer.password)
        (tmp_path / "tmp").mkdir()
        env = instance_environment(settings, bouncer, password_file, tmp_path / "tmp")
        migrated = migrate(command, project, env)
        assert migrated.returncode == 0, migrated.stderr
        key = issue_key(command, project, env, "read", "write", name="rolling")
        instances = [Instance("one", free_port()), Instance("two", free_port())]

        def start(instance: Instance, generation: int) -> float:
            """Start `serve` for this instance; return how long it took to be ready."""
            started = time.monotonic()
            log = tmp_path / f"{instance.name}-{generation}.log"
            instance.process = stack.enter_context(
                launched(
                    [command, "serve"],
                    cwd=project,
                    env={**env, "PORT": str(instance.port)},
                    log=log,
                )
            )
            wait_until_ready(f"http://127.0.0.1:{instance.port}/health/ready", instance.process)
            return time.monotonic() - started

        for instance in instances:
            start(instance, 0)
        folder = Path(tempfile.mkdtemp(prefix="haproxy-"))  # a socket path must stay short
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        balancer = stack.enter_context(Balancer(folder, free_port(), instances).running())
        for instance in instances:
            balancer.wait_for(instance.name, "UP")
        base = f"http://127.0.0.1:{balancer.port}"
        status, user, _ = call("POST", f"{base}/api/v1/users", {"email": "first@example.com"}, key)
        assert status == 201, user

        done = threading.Event()
        watcher = PeakSessions(bouncer.server, SERVER_SESSIONS)
        watcher.start()
        with ThreadPoolExecutor(1) as pool:
            load: Future[Load] = pool.submit(
                asyncio.run,
                run_load(
                    balancer.port,
                    CONNECTIONS,
                    LOAD_LIMIT_SECONDS,
                    reads_and_writes(f"/api/v1/users/{user['id']}"),
                    key,
                    stop=done,
                ),
            )
            try:
                time.sleep(SETTLE_SECONDS)
                rolled = time.monotonic()
                replacements, served_after = [], []
                for instance in instances:
                    replacements.append(replace(instance, balancer, start))
                    served_after.append(int(balancer.status(instance.name)["stot"]))
                rolled = time.monotonic() - rolled
                time.sleep(SETTLE_SECONDS)
            finally:
                done.set()
            outcomes = load.result()
        watcher.done.set()
        watcher.join()
        for instance in instances:
            assert instance.process is not None
            assert stop(instance.process, signal.SIGTERM)
        served_at_end = [int(balancer.status(i.name)["stot"]) for i in instances]

    counts = outcomes.counts()
    sent = sum(counts.values())
    failed = outcomes.failures()
    assert not failed, (counts, failed[:5])
    assert counts["200"] > 0
    assert counts["201"] > 0
    # Each new instance took traffic once back in rotation.
    assert all(end > after for end, after in zip(served_at_end, served_after, strict=True))
    assert rolled < LOAD_LIMIT_SECONDS - SETTLE_SECONDS  # the load outlasted the rollout
    # Two instances' pools (2 x 2 roles x 10) met PgBouncer's pool of 20 server connections.
    assert 0 < watcher.peak <= 20, watcher.peak
    seconds = outcomes.outcomes[-1].ended - outcomes.outcomes[0].started
    drains = ", ".join(f"{r.drain:.2f}" for r in replacements)
    starts = ", ".join(f"{r.start:.2f}" for r in replacements)
    report(
        "rolling deploy, 2 instances behind HAProxy 2.6 through PgBouncer 1.18",
        sent,
        "requests sent",
        f"{len(failed)} failed; over {CONNECTIONS} connections ({counts['200']} reads, "
        f"{counts['201']} writes) in {seconds:.1f} s; "
        f"rollout {rolled:.1f} s; drains {drains} s; new instance ready in {starts} s; "
        f"peak {watcher.peak} server connections",
    )


def replace(
    instance: Instance, balancer: Balancer, start: Callable[[Instance, int], float]
) -> Replacement:
    """Replace one instance as Kubernetes replaces a pod; return how long each step took."""
    began = time.monotonic()
    assert balancer.command(f"set server app/{instance.name} state maint").strip() == ""
    balancer.wait_for(instance.name, "MAINT")
    time.sleep(PRE_STOP_SECONDS)
    old = instance.process
    assert old is not None
    terminated = time.monotonic()
    assert stop(old, signal.SIGTERM)
    drain = time.monotonic() - terminated
    ready = start(instance, 1)
    assert balancer.command(f"set server app/{instance.name} state ready").strip() == ""
    balancer.wait_for(instance.name, "UP")
    return Replacement(drain, ready, time.monotonic() - began)
