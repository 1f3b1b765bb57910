"""Every project's Kubernetes manifests: rendered, schema-valid, safe and wired to the app.

No cluster runs here. Each overlay is rendered by kubectl's kustomize with the commands the
generated docs/deployment.md gives, every object is validated by kubernetes-validate against the
schemas of the oldest and the newest Kubernetes it knows, and the rest is checked against the app:
the policies (tagged images, probes, resources, non-root read-only containers), the health
semantics and the drain, the settings and the Secret, PgBouncer as its docs test it, and the
network policies, and the background jobs' worker when the project has one. The rolling deploy
itself runs for real in tests/test_rolling_deploy.py.
"""

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no type information shipped
import pytest
import yaml

from tests.bouncer import database_page, pgbouncer_block
from tests.test_delivery import settings_variables
from tests.tools import clean_environment, package_of, run

pytestmark = pytest.mark.render

OVERLAYS = ("staging", "production")
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
PLACEHOLDER_PASSWORD = "not-a-real-password"  # noqa: S105 - what the test writes, not a secret
WORKLOADS = ("Deployment", "Job")

Objects = list[dict[str, Any]]


def documented_commands(project: Path) -> str:
    """The shell block of the "Kubernetes" section of the generated docs/deployment.md."""
    page = (project / "docs" / "deployment.md").read_text()
    section = page[page.index("## Kubernetes") :]
    found = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert found, "no sh block in the docs' Kubernetes section"
    return found.group(1)


def kustomize(project: Path, overlay: str, folder: Path) -> Objects:
    """Run the documented commands for `overlay` in a copy of the project's deploy/; its objects."""
    shutil.copytree(project / "deploy", folder / "deploy")
    commands = documented_commands(project).replace("overlays/production", f"overlays/{overlay}")
    environment = clean_environment(DATABASE_PASSWORD=PLACEHOLDER_PASSWORD)
    rendered = run("bash", "-e", "-c", commands, cwd=folder, env=environment)
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


@pytest.fixture
def overlays(project: Path, tmp_path: Path) -> dict[str, Objects]:
    """Every overlay of the project, rendered as its docs say."""
    return {name: kustomize(project, name, tmp_path / name) for name in OVERLAYS}


def find(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    """The object of this kind whose name is `name` (or starts with it, for generated ones)."""
    found = [
        item
        for item in objects
        if item["kind"] == kind
        and re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", item["metadata"]["name"])
    ]
    assert len(found) == 1, (kind, name, [item["metadata"]["name"] for item in objects])
    return found[0]


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The init containers and containers of a pod spec."""
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def workloads(objects: Objects) -> Iterator[dict[str, Any]]:
    """The Deployments and Jobs."""
    return (item for item in objects if item["kind"] in WORKLOADS)


def api_pod(project: Path, objects: Objects) -> dict[str, Any]:
    """The pod spec of the API's Deployment."""
    slug = project_slug(project)
    spec: dict[str, Any] = find(objects, "Deployment", slug)["spec"]["template"]["spec"]
    return spec


def project_slug(project: Path) -> str:
    """The project's slug, as its answers record it."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return str(answers["project_slug"])


def has_jobs(project: Path) -> bool:
    """Whether the project has background jobs (`include_jobs`), as its answers record it."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return bool(answers.get("include_jobs", False))


def labels_of(workload: dict[str, Any]) -> dict[str, str]:
    """The labels of a workload's pods."""
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a `matchLabels` (or a Service's selector) selects pods with these labels."""
    return selector.items() <= labels.items()


def environment_of(project: Path, objects: Objects, workload: dict[str, Any]) -> dict[str, str]:
    """What a workload's one container reads: the settings ConfigMap, its own `env` over it."""
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    own = {item["name"]: item["value"] for item in container.get("env", [])}
    return {**settings_of(project, objects), **own}


def settings_of(project: Path, objects: Objects) -> dict[str, str]:
    """The data of the service's settings ConfigMap."""
    data: dict[str, str] = find(objects, "ConfigMap", f"{project_slug(project)}-settings")["data"]
    return data


def required_settings(project: Path) -> set[str]:
    """The variables the settings module cannot do without (fields with no default)."""
    source = (project / "src" / package_of(project) / "core" / "settings.py").read_text()
    body = source[source.index("class Settings(") :]
    return {name.upper() for name in re.findall(r"^    (\w+): [^=\n]+$", body, re.MULTILINE)}


def test_kubernetes_overlays_follow_the_kubernetes_schemas(overlays: dict[str, Objects]) -> None:
    kinds = set()
    for objects in overlays.values():
        for item in objects:
            kinds.add(item["kind"])
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(item, version, strict=True)

    assert kinds == {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    }


def test_kubernetes_workloads_pass_the_policies(overlays: dict[str, Objects]) -> None:
    """Tagged images (never `latest`), probes, resources, non-root read-only containers."""
    for objects in overlays.values():
        for workload in workloads(objects):
            name = workload["metadata"]["name"]
            pod = workload["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False, name
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert not [volume for volume in pod.get("volumes", []) if "hostPath" in volume]
            for container in containers(pod):
                image = container["image"]
                tag = image.rpartition("/")[2].partition(":")[2]
                assert tag, image
                assert tag != "latest", image
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), name
                assert "memory" in resources["limits"], name
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["capabilities"] == {"drop": ["ALL"]}, name
            if workload["kind"] == "Deployment":
                # Probed: every Deployment a Service routes to. The one none does (the jobs'
                # worker) serves nothing: no port, and no readiness, which would mean nothing.
                services = [item for item in objects if item["kind"] == "Service"]
                served = any(
                    selects(service["spec"]["selector"], labels_of(workload))
                    for service in services
                )
                for container in pod["containers"]:
                    if served:
                        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                            assert probe in container, (name, probe)
                    else:
                        assert name.endswith("-worker"), name
                        assert "ports" not in container, name
                        assert "readinessProbe" not in container, name


def test_kubernetes_api_probes_follow_the_health_semantics_and_outlast_the_drain(
    project: Path, overlays: dict[str, Objects]
) -> None:
    slug = project_slug(project)
    for objects in overlays.values():
        pod = api_pod(project, objects)
        (app,) = pod["containers"]
        settings = settings_of(project, objects)
        probes = {
            name: app[f"{name}Probe"]["httpGet"] for name in ("startup", "liveness", "readiness")
        }
        ports = {port["name"]: port["containerPort"] for port in app["ports"]}
        pre_stop = app["lifecycle"]["preStop"]["exec"]["command"]
        drain = int(settings["GRACEFUL_SHUTDOWN_SECONDS"])
        deployment = find(objects, "Deployment", slug)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = find(objects, "Service", slug)
        autoscaler = find(objects, "HorizontalPodAutoscaler", slug)
        budget = find(objects, "PodDisruptionBudget", slug)

        # Started and live: the process serves HTTP (no I/O); ready: the database answers.
        assert probes["startup"]["path"] == probes["liveness"]["path"] == "/health/live"
        assert probes["readiness"]["path"] == "/health/ready"
        for probe in probes.values():
            (host,) = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
            assert host in settings["ALLOWED_HOSTS"].split(","), host  # else a 400, never ready
            assert ports[probe["port"]] == int(settings["PORT"])
        # Routing stops (preStop), then the drain, both inside the grace period.
        assert pre_stop[0] == "sleep"
        assert int(pre_stop[1]) + drain < pod["terminationGracePeriodSeconds"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert "replicas" not in deployment["spec"]  # the autoscaler's to set
        # A read-only root: temporary files (Prometheus' per-worker ones) go to an emptyDir.
        env = {item["name"]: item.get("value") for item in app["env"]}
        mounts = {mount["name"]: mount["mountPath"] for mount in app["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        (scratch,) = [name for name, path in mounts.items() if path == env["TMPDIR"]]
        assert "emptyDir" in volumes[scratch]
        assert ports["metrics"] != ports["http"]
        # The Service, the budget and the autoscaler all mean these pods.
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == slug
        assert autoscaler["spec"]["minReplicas"] >= 2


def test_kubernetes_settings_and_secret_match_the_app(
    project: Path, overlays: dict[str, Objects]
) -> None:
    variables = settings_variables(project)
    slug = project_slug(project)
    kustomizations = [
        yaml.safe_load(path.read_text())
        for path in (project / "deploy" / "kubernetes").rglob("kustomization.yaml")
    ]
    generated = [item for k in kustomizations for item in k.get("secretGenerator", [])]
    for objects in overlays.values():
        settings = settings_of(project, objects)
        (secret,) = [item for item in objects if item["kind"] == "Secret"]
        ours = {name for name in settings if not name.startswith("OTEL_")}  # OpenTelemetry's own
        assert ours <= variables, ours - variables
        jobs = [find(objects, "Deployment", f"{slug}-worker")] if has_jobs(project) else []
        for workload in (
            find(objects, "Deployment", slug),
            find(objects, "Job", f"{slug}-migrate"),
            *jobs,
        ):
            pod = workload["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            env = {item["name"]: item["value"] for item in container["env"]}
            assert set(env) - {"TMPDIR"} <= variables, env
            assert container["envFrom"] == [
                {
                    "configMapRef": {
                        "name": find(objects, "ConfigMap", f"{slug}-settings")["metadata"]["name"]
                    }
                }
            ]
            # Every setting without a default is given, for every command (`migrate` too).
            assert required_settings(project) <= set(settings) | set(env)
            # The password file is the Secret's one key, mounted read-only.
            folder, _, key = env["DATABASE_PASSWORD_FILE"].rpartition("/")
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            assert mount["readOnly"] is True
            assert volume["secret"]["secretName"] == secret["metadata"]["name"]
            assert set(secret["data"]) == {key}
    # No credential in the manifests: the Secret comes from a git-ignored file, never a literal.
    assert generated, "no secretGenerator"
    for generator in generated:
        assert "literals" not in generator, generator
        assert "envs" not in generator, generator
        assert all(f.split("=", 1)[1].startswith("secrets/") for f in generator["files"])
    assert "secrets/" in (project / ".gitignore").read_text().split()
    assert not list((project / "deploy").rglob("secrets"))
    assert "PASSWORD" not in " ".join(settings_of(project, overlays["production"]))


def test_kubernetes_pgbouncer_is_configured_as_the_docs_test_it(
    project: Path, overlays: dict[str, Objects]
) -> None:
    slug = project_slug(project)
    production, staging = overlays["production"], overlays["staging"]
    page = database_page(project)
    tested = ini_settings(pgbouncer_block(page, "ini"))
    shipped = ini_settings(
        find(production, "ConfigMap", f"{slug}-pgbouncer")["data"]["pgbouncer.ini"]
    )
    service = find(production, "Service", f"{slug}-pgbouncer")
    pod = find(production, "Deployment", f"{slug}-pgbouncer")["spec"]["template"]["spec"]
    settings = settings_of(project, production)
    variables = dict(line.split("=", 1) for line in pgbouncer_block(page, "sh").split())
    url = re.fullmatch(r"postgresql://(\w+)@([\w-]+):(\d+)/(\w+)", settings["DATABASE_URL"])

    for name in ("pool_mode", "auth_type", "max_client_conn", "default_pool_size"):
        assert shipped[name] == tested[name], name
    assert url, settings["DATABASE_URL"]
    assert (url.group(2), int(url.group(3))) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    assert int(shipped["listen_port"]) == pod["containers"][0]["ports"][0]["containerPort"]
    for name in ("DATABASE_TRANSACTION_POOLER", "DATABASE_PREPARED_STATEMENTS"):
        assert settings[name] == variables[name], name
    # Its userlist is written from the service's own Secret: one password, one place.
    (secret,) = [item for item in production if item["kind"] == "Secret"]
    secrets = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
    assert secrets == [secret["metadata"]["name"]]
    assert shipped["auth_file"].startswith(pod["initContainers"][0]["volumeMounts"][1]["mountPath"])
    # `migrate` goes straight to PostgreSQL, as staging's pods do: its lock lasts the session.
    job = find(production, "Job", f"{slug}-migrate")["spec"]["template"]["spec"]["containers"][0]
    job_env = {item["name"]: item["value"] for item in job["env"]}
    assert job_env["DATABASE_URL"] == settings_of(project, staging)["DATABASE_URL"]
    assert job_env["DATABASE_TRANSACTION_POOLER"] == "false"
    # So does the jobs' worker: it LISTENs, which transaction mode cannot carry.
    if has_jobs(project):
        worker = environment_of(
            project, production, find(production, "Deployment", f"{slug}-worker")
        )
        assert worker["DATABASE_URL"] == settings_of(project, staging)["DATABASE_URL"]
        assert worker["DATABASE_TRANSACTION_POOLER"] == "false"
        host = re.fullmatch(r"postgresql://\w+@([\w-]+):(\d+)/\w+", worker["DATABASE_URL"])
        assert host, worker["DATABASE_URL"]
        assert (host.group(1), host.group(2)) != (url.group(2), url.group(3))  # not PgBouncer
    # Staging goes straight to PostgreSQL.
    assert not [item for item in staging if "pgbouncer" in item["metadata"]["name"]]
    assert "DATABASE_TRANSACTION_POOLER" not in settings_of(project, staging)


def ini_settings(text: str) -> dict[str, str]:
    """The `name = value` lines of a pgbouncer.ini, comments left out."""
    pairs = (
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith(";")
    )
    return {name.strip(): value.strip() for name, value in pairs}


def test_kubernetes_network_policies_open_only_what_the_service_needs(
    project: Path, overlays: dict[str, Objects]
) -> None:
    slug = project_slug(project)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    for name, objects in overlays.items():
        policy = find(objects, "NetworkPolicy", slug)["spec"]
        (app,) = api_pod(project, objects)["containers"]
        pod_labels = find(objects, "Deployment", slug)["spec"]["template"]["metadata"]["labels"]
        job_labels = find(objects, "Job", f"{slug}-migrate")["spec"]["template"]["metadata"][
            "labels"
        ]
        ingress = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
        egress = {port["port"] for rule in policy["egress"] for port in rule["ports"]}

        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert policy["podSelector"]["matchLabels"].items() <= job_labels.items()
        assert ingress == {port["containerPort"] for port in app["ports"]}
        expected = {53, 5432} | ({443} if answers["auth"] == "oidc" else set())
        assert egress == expected | ({6432} if name == "production" else set()), egress
    pgbouncer = find(overlays["production"], "NetworkPolicy", f"{slug}-pgbouncer")["spec"]
    (allowed,) = pgbouncer["ingress"]
    assert allowed["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": slug}}}]
    assert [port["port"] for port in allowed["ports"]] == [6432]
    if not has_jobs(project):
        return
    # The worker: nothing in (the service's policy, which opens HTTP, does not select it), out
    # only DNS and PostgreSQL itself (never PgBouncer, which takes nothing from it).
    for name, objects in overlays.items():
        worker = labels_of(find(objects, "Deployment", f"{slug}-worker"))
        policy = find(objects, "NetworkPolicy", f"{slug}-worker")["spec"]
        egress = {port["port"] for rule in policy["egress"] for port in rule["ports"]}

        assert selects(policy["podSelector"]["matchLabels"], worker)
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy.get("ingress", []) == []
        assert egress == {53, 5432}, egress
        others = [
            item["spec"]["podSelector"]["matchLabels"]
            for item in objects
            if item["kind"] == "NetworkPolicy" and item["metadata"]["name"] != f"{slug}-worker"
        ]
        assert not [selector for selector in others if selects(selector, worker)]
        if name == "production":
            assert not selects(allowed["from"][0]["podSelector"]["matchLabels"], worker)


def test_kubernetes_render_needs_the_password_file(
    rendered: Callable[[str], Path], tmp_path: Path
) -> None:
    project = rendered("defaults")
    shutil.copytree(project / "deploy", tmp_path / "deploy")
    refused = run(
        "kubectl", "kustomize", "deploy/kubernetes/overlays/production", cwd=tmp_path, check=False
    )

    assert refused.returncode != 0
    assert "secrets/database_password" in refused.stderr


# PostgreSQL's defaults: max_connections, and the connections kept for superusers of them.
MAX_CONNECTIONS, SUPERUSER_RESERVED = 100, 3
MIGRATE_CONNECTIONS = 2  # `migrate`: the lock's holder and the migrating connection


def worker_connections(project: Path, objects: Objects) -> int:
    """The most connections the jobs' workers open, straight to PostgreSQL (0 without jobs).

    A worker pod holds the queue's connection and one writer connection per running job
    (WORKER_CONCURRENCY), and up to WORKER_CONCURRENCY reader connections.
    """
    if not has_jobs(project):
        return 0
    worker = find(objects, "Deployment", f"{project_slug(project)}-worker")
    concurrency = int(environment_of(project, objects, worker)["WORKER_CONCURRENCY"])
    per_pod = 1 + concurrency + concurrency
    replicas: int = worker["spec"]["replicas"]
    return replicas * per_pod


def test_kubernetes_pods_at_most_fit_the_database_connections(
    project: Path, overlays: dict[str, Objects]
) -> None:
    slug = project_slug(project)
    budget = MAX_CONNECTIONS - SUPERUSER_RESERVED
    for name, objects in overlays.items():
        settings = settings_of(project, objects)
        pool = int(settings["DATABASE_POOL_SIZE"]) + int(settings["DATABASE_MAX_OVERFLOW"])
        per_pod = int(settings["WEB_CONCURRENCY"]) * 2 * pool  # the writer's and the reader's
        most_pods = find(objects, "HorizontalPodAutoscaler", slug)["spec"]["maxReplicas"]
        clients = most_pods * per_pod
        # Straight to PostgreSQL in every overlay: `migrate`, and the jobs' workers (LISTEN).
        direct = MIGRATE_CONNECTIONS + worker_connections(project, objects)
        if "DATABASE_TRANSACTION_POOLER" not in settings:
            assert clients + direct <= budget, (name, clients, direct)
            continue
        # Behind PgBouncer the pods' connections are its clients; its pools meet PostgreSQL.
        bouncer = find(objects, "Deployment", f"{slug}-pgbouncer")
        ini = ini_settings(find(objects, "ConfigMap", f"{slug}-pgbouncer")["data"]["pgbouncer.ini"])
        pools = bouncer["spec"]["replicas"] * int(ini["default_pool_size"])
        assert clients + MIGRATE_CONNECTIONS <= int(ini["max_client_conn"]), (name, clients)
        assert pools + direct <= budget, (name, pools, direct)
        assert most_pods * per_pod > budget  # what PgBouncer is there for


def test_kubernetes_worker_runs_the_jobs_exactly_when_the_project_has_them(
    project: Path, overlays: dict[str, Objects]
) -> None:
    slug = project_slug(project)
    base = project / "deploy" / "kubernetes" / "base"
    if not has_jobs(project):
        for objects in overlays.values():
            names = [item["metadata"]["name"] for item in objects]
            assert not [name for name in names if "worker" in name], names
        assert not (base / "worker-deployment.yaml").exists()
        return
    compose = yaml.safe_load((project / "compose.yaml").read_text())["services"]["worker"]
    for objects in overlays.values():
        deployment = find(objects, "Deployment", f"{slug}-worker")
        pod = deployment["spec"]["template"]["spec"]
        (worker,) = pod["containers"]
        (api,) = api_pod(project, objects)["containers"]
        environment = environment_of(project, objects, deployment)
        settings = settings_of(project, objects)
        services = [item for item in objects if item["kind"] == "Service"]

        # The API's image, its `worker` command; the API's settings and password.
        assert worker["image"] == api["image"]
        assert worker["args"] == ["worker"]
        assert worker["envFrom"] == api["envFrom"]
        assert pod["serviceAccountName"] == api_pod(project, objects)["serviceAccountName"]
        # Two at least: a killed worker's job goes to the other after JOB_LEASE_SECONDS.
        assert deployment["spec"]["replicas"] >= 2
        # Running jobs finish before Kubernetes kills: as long as compose's worker waits.
        grace = re.fullmatch(r"(\d+)s", compose["stop_grace_period"])
        assert grace is not None
        assert pod["terminationGracePeriodSeconds"] == int(grace.group(1)) >= 60
        # The queue's connection comes out of the writer's pool, beside the jobs'.
        pool = int(settings["DATABASE_POOL_SIZE"]) + int(settings["DATABASE_MAX_OVERFLOW"])
        assert int(environment["WORKER_CONCURRENCY"]) < pool
        assert environment.get("DATABASE_TRANSACTION_POOLER", "false") == "false"
        # It serves nothing: no Service routes to it, and the API's autoscaler leaves it alone.
        assert not [s for s in services if selects(s["spec"]["selector"], labels_of(deployment))]
        autoscaler = find(objects, "HorizontalPodAutoscaler", slug)
        assert autoscaler["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]
