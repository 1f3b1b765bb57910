"""The generated Dockerfile and compose file, built and run by a real engine: Debian's podman.

Each image is built from a project's unmodified Dockerfile on stand-in base images made here
(tests/containers.py), then run as the Kubernetes manifests run it: as uid 10001, on a read-only
root filesystem with a tmpfs at /tmp, no capability, the password from a file, the production
settings of deploy/kubernetes (addresses changed). The answer sets cover each `auth`, and jobs.

Needs `apt-get install podman buildah mmdebstrap runc` (the `container` session).
"""

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests.answers import ANSWER_SETS
from tests.conftest import render
from tests.containers import Built, Engine
from tests.figures import report
from tests.load import run_load
from tests.service import call, free_port
from tests.tools import UV, clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.container

ANSWERS = {
    "defaults": ANSWER_SETS["defaults"],  # API keys, the example API
    "identity": ANSWER_SETS["identity"],  # OIDC, jobs
    "open": {"project_name": "Open Depot", "auth": "none", "include_jobs": True},
}
GRACE_SECONDS = 35  # the Deployment's terminationGracePeriodSeconds
READY_TIMEOUT_SECONDS = 60.0
SECRET = "/run/secrets/database/password"  # noqa: S105 - where the Deployment mounts it
SLOW_INSERTS = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email LIKE 'slow%' THEN PERFORM pg_sleep(1); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """Podman, with the stand-in base images every project's Dockerfile and compose file name."""
    engine = Engine()
    started = time.monotonic()
    made = engine.stand_ins({"3.13"}, uv_tag="0.13")
    if made:
        report("stand-in base images made", time.monotonic() - started, "s", ", ".join(made))
    yield engine
    engine.prune()


@pytest.fixture(scope="module")
def projects(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each answer set rendered and locked (`uv lock`, as its owner does first) once."""
    rendered = {}
    for name, answers in ANSWERS.items():
        folder = tmp_path_factory.mktemp(f"container-{name}") / "project"
        rendered[name] = render(template, folder, answers)
        run(UV, "lock", "--quiet", cwd=rendered[name])
    return rendered


@pytest.fixture(scope="module")
def images(engine: Engine, projects: dict[str, Path]) -> Callable[[str], Built]:
    """Build an answer set's image once, from nothing of it cached."""
    built: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in built:
            tag = f"localhost/keel-test-{name}:latest"
            engine.podman("image", "rm", "--force", tag)
            engine.prune()
            built[name] = engine.build(projects[name], tag)
        return built[name]

    return get


def test_the_stand_ins_match_what_the_dockerfile_names(projects: dict[str, Path]) -> None:
    for project in projects.values():
        dockerfile = (project / "Dockerfile").read_text()
        assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.13-slim"] * 2
        assert "COPY --from=ghcr.io/astral-sh/uv:0.13 " in dockerfile
        assert "image: postgres:18\n" in (project / "compose.yaml").read_text()


def test_the_image_builds_fast_again_and_records_its_packages(
    engine: Engine, images: Callable[[str], Built], projects: dict[str, Path]
) -> None:
    cold = images("defaults")
    project = projects["defaults"]
    unchanged = engine.build(project, cold.tag)
    module = project / "src" / package_of(project) / "__init__.py"
    module.write_text(module.read_text() + "# changed\n")
    changed = engine.build(project, cold.tag)
    size = int(engine.podman("image", "inspect", "--format={{.Size}}", cold.tag).stdout)
    base = engine.podman(
        "image", "inspect", "--format={{.Size}}", "docker.io/library/python:3.13-slim"
    )
    report("image build, no layer cached", cold.seconds, "s", "defaults")
    report("image build, unchanged", unchanged.seconds, "s")
    report("image build, after a source change", changed.seconds, "s")
    report("image size", size / 1e6, "MB", f"the base {int(base.stdout) / 1e6:.0f} MB")

    # The SBOM lists exactly the packages installed in the image, at their versions.
    listed = json.loads(
        engine.podman("run", "--rm", "--entrypoint=cat", cold.tag, "/app/sbom.cdx.json").stdout
    )
    assert listed["bomFormat"] == "CycloneDX"
    installed = engine.podman(
        "run", "--rm", "--entrypoint=python", cold.tag, "-c", INSTALLED_PACKAGES
    ).stdout.split()
    components = {
        f"{canonicalize_name(c['name'])}=={c['version']}"
        for c in listed["components"]
        if installs_here(c)
    }
    assert set(installed) - {f"{project_name(project)}==0.1.0"} == components
    assert listed["metadata"]["component"]["name"] == project_name(project)
    # No build tool reached the runtime image.
    found = engine.podman(
        "run", "--rm", "--entrypoint=sh", cold.tag, "-c", "command -v uv", check=False
    )
    assert found.returncode != 0
    assert found.stdout == ""


@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_image_serves_as_the_deployment_runs_it(
    name: str,
    engine: Engine,
    images: Callable[[str], Built],
    projects: dict[str, Path],
    postgres: Any,
    tmp_path: Path,
) -> None:
    project, image = projects[name], images(name).tag
    with production_settings(project, postgres, tmp_path, f"serve_{name}") as (settings, key):
        engine.podman("run", "--rm", *pod_options(settings), image, "migrate")
        started = time.monotonic()
        container = engine.podman("run", "--detach", *pod_options(settings), image).stdout.strip()
        try:
            base = f"http://127.0.0.1:{settings['PORT']}"
            wait_until_ready(f"{base}/health/ready", engine, container)
            ready = time.monotonic() - started
            headers = key or issued_key(engine, image, settings, project)

            assert crud_round_trip(base, headers) == [201, 200, 200, 204, 404]
            assert exec_in(engine, container, "id", "-u").stdout.strip() == "10001"
            assert exec_in(engine, container, "touch", "/app/written", check=False).returncode
            assert exec_in(engine, container, "touch", "/tmp/written")  # noqa: S108 - in the container.returncode == 0
            healthy = wait_until_healthy(engine, container)

            stopping = time.monotonic()
            engine.podman("stop", f"--time={GRACE_SECONDS}", container)
            stopped = time.monotonic() - stopping
            assert state(engine, container)["ExitCode"] == 0
            assert sessions(postgres, settings) == 0
        finally:
            logs = engine.podman("logs", container).stdout
            engine.podman("rm", "--force", container)
    assert '"levelname": "ERROR"' not in logs, logs
    report(f"container ready ({name})", ready, "s", "from `podman run`")
    report(f"container healthy ({name})", healthy, "s", "HEALTHCHECK polled")
    report(f"container stopped ({name})", stopped, "s", f"`podman stop --time={GRACE_SECONDS}`")


def test_a_stop_under_load_finishes_the_requests_in_flight(
    engine: Engine,
    images: Callable[[str], Built],
    projects: dict[str, Path],
    postgres: Any,
    tmp_path: Path,
) -> None:
    project, image = projects["defaults"], images("defaults").tag
    with production_settings(project, postgres, tmp_path, "stop_under_load") as (settings, _):
        container = migrated_and_started(engine, image, settings)
        postgres.psql(SLOW_INSERTS, database="stop_under_load")
        headers = issued_key(engine, image, settings, project)
        try:
            base = f"http://127.0.0.1:{settings['PORT']}"
            wait_until_ready(f"{base}/health/ready", engine, container)
            _, user, _ = call("POST", f"{base}/api/v1/users", {"email": "u@x.io"}, headers)
            reads = ("GET", f"/api/v1/users/{user['id']}", None)
            with ThreadPoolExecutor(8) as pool:
                load = pool.submit(
                    asyncio.run, run_load(int(settings["PORT"]), 8, 4.0, lambda: reads, headers)
                )
                slow = [
                    pool.submit(
                        call, "POST", f"{base}/api/v1/users", {"email": f"slow-{n}@x.io"}, headers
                    )
                    for n in range(6)
                ]
                time.sleep(0.5)  # every slow insert is now waiting in PostgreSQL
                stopping = time.monotonic()
                engine.podman("stop", f"--time={GRACE_SECONDS}", container)
                stopped = time.monotonic() - stopping
                statuses = [answer.result()[0] for answer in slow]
                outcomes = load.result().counts()
            assert state(engine, container)["ExitCode"] == 0
            assert sessions(postgres, settings) == 0
        finally:
            engine.podman("rm", "--force", container)
    assert statuses == [201] * 6
    # Once the listener closes, new connections are refused; no request got a 5xx.
    assert outcomes["200"] > 0, outcomes
    assert set(outcomes) <= {"200", "connect error", "socket error"}, outcomes
    assert stopped < GRACE_SECONDS
    report(
        "container stopped under load",
        stopped,
        "s",
        f"6 slow writes in flight all 201; reads {dict(outcomes)}",
    )


def test_the_worker_command_runs_a_job_enqueued_through_the_api(
    engine: Engine,
    images: Callable[[str], Built],
    projects: dict[str, Path],
    postgres: Any,
    tmp_path: Path,
) -> None:
    project, image = projects["open"], images("open").tag
    with production_settings(project, postgres, tmp_path, "worker") as (settings, _):
        server = migrated_and_started(engine, image, settings)
        worker = engine.podman(
            "run", "--detach", "--no-healthcheck", *pod_options(settings), image, "worker"
        ).stdout.strip()
        try:
            base = f"http://127.0.0.1:{settings['PORT']}"
            wait_until_ready(f"{base}/health/ready", engine, server)
            status, user, _ = call("POST", f"{base}/api/v1/users", {"email": "w@x.io"})
            assert status == 201
            enqueued = time.monotonic()
            welcomed = f"Welcomed user {user['id']}"
            while welcomed not in engine.podman("logs", worker).stderr:
                assert time.monotonic() - enqueued < READY_TIMEOUT_SECONDS, "no job ran"
                assert state(engine, worker)["Running"], engine.podman("logs", worker).stderr
                time.sleep(0.2)
            ran = time.monotonic() - enqueued
            engine.podman("stop", "--time=60", worker)
            assert state(engine, worker)["ExitCode"] == 0
        finally:
            engine.podman("rm", "--force", server, worker)
    report("job run by the worker container", ran, "s", "from the POST that enqueued it")


def test_the_compose_stack_comes_up_in_order_and_goes_away_with_its_volumes(
    engine: Engine, images: Callable[[str], Built], projects: dict[str, Path]
) -> None:
    project = projects["defaults"]
    slug, package = project_name(project), package_of(project)
    # podman-compose names a service's image <project>_<service>: the image built above.
    for service in ("app", "migrations"):
        engine.podman("tag", images("defaults").tag, f"localhost/{slug}_{service}:latest")
    (project / "secrets").mkdir(exist_ok=True)
    (project / "secrets" / "database_password").write_text("a compose secret")
    port = free_port()
    compose = Compose(engine, project, {"APP_PORT": str(port)})
    base = f"http://127.0.0.1:{port}"
    try:
        # podman-compose ignores `condition: service_healthy`: the order is driven here, as
        # `docker compose up` would take it.
        started = time.monotonic()
        compose("up", "--detach", "--no-build", "postgres")
        wait_until_healthy(engine, f"{slug}_postgres_1")
        healthy = time.monotonic() - started
        compose("up", "--no-deps", "--no-build", "migrations")
        assert state(engine, f"{slug}_migrations_1")["ExitCode"] == 0
        migrated = time.monotonic() - started
        compose("up", "--detach", "--no-deps", "--no-build", "app")
        wait_until_ready(f"{base}/health/ready", engine, f"{slug}_app_1")
        ready = time.monotonic() - started
        issued = exec_in(
            engine,
            f"{slug}_app_1",
            package,
            "api-key",
            "create",
            "--name=compose",
            "--scope=read",
            "--scope=write",
        )
        headers = {"Authorization": f"Bearer {issued.stdout.strip()}"}
        assert crud_round_trip(base, headers) == [201, 200, 200, 204, 404]

        # The replica profile: a streaming standby, and the app reading from it.
        compose("--profile=replica", "up", "--detach", "--no-deps", "--no-build", "replica")
        until(lambda: "streaming" in primary_sql(engine, slug, REPLICATION_STATE), "streaming")
        read_url = {"DATABASE_READ_URL": "postgresql://app@replica:5432/app"}
        compose.with_env(read_url)("up", "--detach", "--no-deps", "--no-build", "app")
        wait_until_ready(f"{base}/health/ready", engine, f"{slug}_app_1")
        _, user, _ = call("POST", f"{base}/api/v1/users", {"email": "r@x.io"}, headers)
        until(lambda: call("GET", f"{base}/api/v1/users/{user['id']}", None, headers)[0] == 200)
        replica_sessions = engine.podman(
            "exec",
            f"{slug}_replica_1",
            "psql",
            "--username=app",
            "--dbname=app",
            "-Atc",
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{package}-%'",  # noqa: S608
        ).stdout.strip()
        assert int(replica_sessions) > 0
    finally:
        compose("--profile=replica", "down", "--volumes", check=False)
    left = engine.podman("ps", "--all", f"--filter=label=io.podman.compose.project={slug}")
    assert len(left.stdout.splitlines()) == 1, left.stdout  # the header line only
    volumes = engine.podman("volume", "ls", "--quiet").stdout.split()
    assert not [volume for volume in volumes if volume.startswith(f"{slug}_")], volumes
    report("compose: postgres healthy", healthy, "s")
    report("compose: migrations done", migrated, "s")
    report("compose: app ready", ready, "s", "on the published port, the password a secret")


class Compose:
    """podman-compose in a project, with extra variables in its environment."""

    def __init__(self, engine: Engine, project: Path, env: Mapping[str, str]) -> None:
        """Remember where and with what it runs."""
        self.engine, self.project, self.env = engine, project, dict(env)

    def with_env(self, extra: Mapping[str, str]) -> "Compose":
        """The same, with more variables."""
        return Compose(self.engine, self.project, {**self.env, **extra})

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `podman-compose ARGS` in the project."""
        return self.engine.run(
            "podman-compose", *args, cwd=self.project, env=self.env, check=check, timeout=300
        )


@contextmanager
def production_settings(
    project: Path, postgres: Any, folder: Path, database: str
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The Deployment's settings for this host, and a credential when an issuer makes it.

    The settings are deploy/kubernetes's, with this host's addresses: a database of its own, a
    free port, an OIDC issuer of the project's own served here when it wants tokens.
    """
    url = urlsplit(postgres.create_database(database))
    password = folder / "password"
    password.write_text(url.password or "unused: the test server trusts loopback")
    os.chown(password, 0, 10001)  # as the Secret's volume with fsGroup 10001 mounts it
    password.chmod(0o440)
    settings_file = project / "deploy" / "kubernetes" / "base" / "settings.env"
    settings = dict(
        line.split("=", 1)
        for line in settings_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    address = url._replace(netloc=f"{url.username}@{url.hostname}:{url.port}")
    settings |= {
        "DATABASE_URL": urlunsplit(address),
        "DATABASE_PASSWORD_FILE": SECRET,
        "PORT": str(free_port()),
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
        "_SECRET_FILE": str(password),
    }
    if "OIDC_ISSUER" not in settings:
        yield settings, {}
        return
    python = str(uv_sync(project) / "python")
    command = [python, "-m", f"{package_of(project)}.devtools.identity_provider"]
    with subprocess.Popen(
        command, cwd=project, env=clean_environment(), stdout=subprocess.PIPE, text=True
    ) as issuer:
        try:
            assert issuer.stdout is not None
            printed = dict(issuer.stdout.readline().strip().split("=", 1) for _ in range(3))
            settings |= {key: printed[key] for key in ("OIDC_ISSUER", "OIDC_AUDIENCE")}
            yield settings, {"Authorization": f"Bearer {printed['API_KEY']}"}
        finally:
            issuer.terminate()


def migrated_and_started(engine: Engine, image: str, settings: Mapping[str, str]) -> str:
    """Run the image's `migrate`, then start `serve` detached; the container's id."""
    engine.podman("run", "--rm", *pod_options(settings), image, "migrate")
    return engine.podman("run", "--detach", *pod_options(settings), image).stdout.strip()


def pod_options(settings: Mapping[str, str]) -> list[str]:
    """`podman run` options for a container as the Deployment runs it (host network here)."""
    return [
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp:size=64m",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--user=10001:10001",
        f"--volume={settings['_SECRET_FILE']}:{SECRET}:ro",
        *(f"--env={k}={v}" for k, v in settings.items() if not k.startswith("_")),
    ]


def issued_key(
    engine: Engine, image: str, settings: Mapping[str, str], project: Path
) -> dict[str, str]:
    """A key to read and write from the image's own `api-key create`; none without API keys."""
    if "auth: api_key" not in (project / ".copier-answers.yml").read_text():
        return {}
    issued = engine.podman(
        "run",
        "--rm",
        *pod_options(settings),
        image,
        "api-key",
        "create",
        "--name=container",
        "--scope=read",
        "--scope=write",
    )
    return {"Authorization": f"Bearer {issued.stdout.strip()}"}


def crud_round_trip(base: str, headers: Mapping[str, str]) -> list[int]:
    """Create, read, update, delete a user and read it again: the statuses in that order."""
    status, user, _ = call("POST", f"{base}/api/v1/users", {"email": "c@x.io"}, headers)
    statuses = [status]
    url = f"{base}/api/v1/users/{user['id']}"
    statuses.append(call("GET", url, None, headers)[0])
    statuses.append(call("PATCH", url, {"full_name": "C"}, headers)[0])
    statuses.append(call("DELETE", url, None, headers)[0])
    statuses.append(call("GET", url, None, headers)[0])
    return statuses


def wait_until_ready(url: str, engine: Engine, container: str) -> None:
    """Poll `url` until it answers 200; fail early, with the logs, if the container stops."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if call("GET", url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if not state(engine, container)["Running"]:
            break
        time.sleep(0.1)
    logs = engine.podman("logs", container, check=False)
    raise AssertionError(f"{url} not ready\n{logs.stdout}{logs.stderr}")


def wait_until_healthy(engine: Engine, container: str) -> float:
    """Run the image's HEALTHCHECK until it passes (no systemd here schedules it)."""
    started = time.monotonic()
    until(lambda: engine.podman("healthcheck", "run", container, check=False).returncode == 0)
    assert state(engine, container)["Health"]["Status"] == "healthy"
    return time.monotonic() - started


def until(condition: Callable[[], bool], what: str = "the condition") -> None:
    """Wait for `condition`, at most READY_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not hold in time"
        time.sleep(0.2)


def exec_in(
    engine: Engine, container: str, *command: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a running container."""
    return engine.podman("exec", container, *command, check=check)


def state(engine: Engine, container: str) -> dict[str, Any]:
    """The container's state, as `podman inspect` reports it."""
    found: dict[str, Any] = json.loads(engine.podman("inspect", container).stdout)[0]["State"]
    return found


def sessions(postgres: Any, settings: Mapping[str, str]) -> int:
    """Connections still open to the container's database."""
    database = urlsplit(settings["DATABASE_URL"]).path.lstrip("/")
    query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"  # noqa: S608
    query += " AND pid <> pg_backend_pid()"
    return int(postgres.psql(query))


def primary_sql(engine: Engine, slug: str, sql: str) -> str:
    """Run SQL on the compose stack's primary as its `app` role."""
    return engine.podman(
        "exec", f"{slug}_postgres_1", "psql", "--username=app", "--dbname=app", "-Atc", sql
    ).stdout


def project_name(project: Path) -> str:
    """The project's name in pyproject.toml (the compose project's too)."""
    match = re.search(r'^name = "(.+)"$', (project / "pyproject.toml").read_text(), re.M)
    assert match
    return match.group(1)


def installs_here(component: dict[str, Any]) -> bool:
    """Whether an SBOM component's platform marker (uv's) holds in the image: Linux, x86-64."""
    markers = [
        p["value"] for p in component.get("properties", []) if p["name"] == "uv:package:marker"
    ]
    return all(Marker(marker).evaluate(IMAGE_PLATFORM) for marker in markers)


IMAGE_PLATFORM = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.13",
    "python_full_version": "3.13.5",
}
REPLICATION_STATE = "SELECT state FROM pg_stat_replication"
INSTALLED_PACKAGES = (
    "import importlib.metadata as m; "
    "import re; "
    "print(*sorted(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() + '==' + d.version"
    " for d in m.distributions()))"
)
