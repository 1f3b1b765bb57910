"""Every check of the template, one session each; `nox` runs the default set.

Sessions install with uv into their own virtualenvs; generated projects share uv's cache.
"""

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "render", "generated", "update", "docs"]
nox.options.error_on_external_run = True

PYTHON = "3.11"
# Never fetch a Python build: use the interpreters this machine has.
ENV = {"UV_PYTHON_DOWNLOADS": "never"}
# Two pytest-xdist workers, as many as CI's cores: renders, installs and generated suites run
# side by side. The tests of load and faults pass with the other worker busy beside them.
WORKERS = ("-n", "2")


def install(session: nox.Session, *groups: str) -> None:
    """Install dependency groups from pyproject.toml into the session."""
    for group in groups:
        session.install("--group", group)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint, format-check and type-check the template's own code."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def render(session: nox.Session) -> None:
    """Render every answer set and check the files: layout, lint, types, refused answers."""
    install(session, "test")
    named = ("generated", "update", "pgbouncer", "observability", "rolling", "container", "oidc")
    selection = " and ".join(f"not {marker}" for marker in named)
    session.run("pytest", "-m", selection, *WORKERS, *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def generated(session: nox.Session) -> None:
    """Install generated projects, run their own suites and serve them on a real PostgreSQL."""
    install(session, "test")
    session.run("pytest", "-m", "generated", *WORKERS, *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def update(session: nox.Session) -> None:
    """Update projects rendered from older releases; owner edits must survive."""
    install(session, "test")
    session.run("pytest", "-m", "update", *WORKERS, *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def pgbouncer(session: nox.Session) -> None:
    """Run a generated project's suite and a load through PgBouncer (apt-get install pgbouncer)."""
    install(session, "test")
    session.run("pytest", "-m", "pgbouncer", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def observability(session: nox.Session) -> None:
    """Trace and scrape a served project with Prometheus (apt-get install prometheus)."""
    install(session, "test")
    session.run("pytest", "-m", "observability", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def rolling(session: nox.Session) -> None:
    """Replace served instances behind HAProxy, through PgBouncer, under load; none may fail."""
    install(session, "test")
    session.run("pytest", "-m", "rolling", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """Build and run the generated images and compose stack with Debian's podman."""
    install(session, "container")
    session.run("pytest", "-m", "container", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def oidc(session: nox.Session) -> None:
    """Serve an OIDC project against panva's oidc-provider, from npm (Node.js and npm)."""
    install(session, "oidc")
    session.run("pytest", "-m", "oidc", *session.posargs, env=ENV)


@nox.session(python=PYTHON)
def openapi(session: nox.Session) -> None:
    """Rewrite the generated projects' committed OpenAPI documents from what they serve."""
    install(session, "test")
    session.run("python", "-m", "tests.openapi_snapshots", env=ENV)


@nox.session(python=PYTHON)
def names(session: nox.Session) -> None:
    """Rewrite the module names a package may not take, from a real install of a project."""
    install(session, "test")
    session.run("python", "-m", "tests.module_names", env=ENV)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation strictly: a broken link or missing page fails."""
    install(session, "docs")
    site = session.create_tmp() + "/site"
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark the service against the raw limit and a typical peer (needs wrk, valgrind)."""
    install(session, "bench")
    session.run("python", "-m", "bench.run", env=ENV)


@nox.session(python=PYTHON)
def bench_jobs(session: nox.Session) -> None:
    """Jobs per second of the generated worker, one and two processes."""
    install(session, "bench")
    session.run("python", "-m", "bench.jobs", env=ENV)


@nox.session(python=False)
def check(session: nox.Session) -> None:
    """Run every default session in turn."""
    for name in nox.options.sessions or []:
        session.notify(name)
