"""A newcomer's first hour, from a fresh render, with the commands read from its own README.

For each way of authenticating, in an environment with no database variable and no PostgreSQL
on PATH: `dev` starts; the README's requests create a user (201) and list it; the README's daily
commands issue a credential, show the migrations, write a revision for a new column and apply
it, all against the database `dev` runs (never a second cluster); with `dev` stopped they start
that database for their own run; and the project's own suite passes, the migration gate
included. The commands run as the README prints them, through bash; only the port differs.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.answers import ANSWER_SETS
from tests.figures import report
from tests.local_postgres import shipped
from tests.pythons import allowed_by
from tests.service import free_port, leftovers, processes_mentioning, running, stop
from tests.tools import UV, clean_environment, package_of, uv_sync

pytestmark = pytest.mark.generated

README_PORT = "8000"
# Each `auth` on another Python, so every mode and every Python this machine has runs once.
NEWCOMERS = {"defaults": "3.13", "identity": "3.13", "after_tests": "3.12"}
# Beside the README's two resources (`shops`, `products` referring to it): every type and modifier.
EVERY_FIELD = (
    "events title:str:80:unique:index note:text:optional count:int:index total:bigint:optional "
    "amount:decimal:unique active:bool starts_on:date:optional:index happened_at:datetime "
    "token:uuid:unique shop:ref:shops:optional"
)
NEW_COLUMN = "    nickname: Mapped[str | None] = mapped_column(String(50))\n"


def section(readme: str, title: str) -> str:
    """The text of the README's `## title` section."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert found, f"the README has no '## {title}' section"
    return found.group(1)


def shell_blocks(text: str) -> list[list[str]]:
    """The lines of each ```sh block of `text`."""
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def daily_commands(readme: str, package: str) -> dict[str, str]:
    """The `uv run` commands of the README's Commands table, by their first word after it."""
    commands = re.findall(r"`(uv run [^`]+)`", section(readme, "Commands"))
    found: dict[str, str] = {}
    for command in commands:
        words = command.split()
        key = words[3] if words[2] == package and len(words) > 3 else words[2]
        found.setdefault(key, command)
    return found


def without_postgres(path: str) -> str:
    """PATH without any folder holding PostgreSQL's server or client programs."""
    folders = path.split(os.pathsep)
    return os.pathsep.join(
        folder
        for folder in folders
        if not any((Path(folder) / tool).exists() for tool in ("postgres", "pg_ctl", "initdb"))
        and "postgresql" not in folder
    )


class Shell:
    """Runs README lines with bash in the project, as a newcomer's terminal would."""

    def __init__(self, project: Path, env: dict[str, str], port: int) -> None:
        """Run in `project` with `env`; the README's port 8000 becomes `port`."""
        self.project, self.env, self.port = project, env, port
        self.seconds: dict[str, float] = {}

    def line(self, line: str) -> str:
        """The README line with this run's port."""
        return line.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{self.port}")

    def __call__(self, line: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one line; fail with its output unless it succeeds (or `check` is off)."""
        started = time.perf_counter()
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", self.line(line)],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.seconds[line] = time.perf_counter() - started
        assert "Traceback" not in result.stderr, f"{line}\n{result.stderr}"
        if check:
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        return result


def postmasters(project: Path) -> set[str]:
    """The PostgreSQL servers running this project's `.local/postgres` cluster.

    As root the cluster may live in a folder of /tmp that `nobody` can reach, named after it.
    """
    folder = project / ".local" / "postgres"
    moved = Path(tempfile.gettempdir(), f"local-postgres-data-{shipped._digest(str(folder))}")
    return {
        line
        for line in processes_mentioning("postgres -D")
        if line.split(" -D ", 1)[1].split()[0] in {str(folder), str(moved)}
    }


@pytest.mark.parametrize(("name", "version"), NEWCOMERS.items())
def test_first_hour_runs_the_readme_commands_as_written(
    fresh_project: Callable[[str], Path], name: str, version: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    project = fresh_project(name)
    package = package_of(project)
    python = allowed_by(ANSWER_SETS[name])[version]
    readme = (project / "README.md").read_text()
    venv = uv_sync(project, python).parent
    port = free_port()
    env = clean_environment(
        PATH=without_postgres(f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}"),
        UV_PROJECT_ENVIRONMENT=str(venv),
        UV_PYTHON=str(python),
        PORT=str(port),
    )
    for variable in ("ENVIRONMENT", "EMBEDDED_PG_BIN", "OIDC_ISSUER", "PGHOST", "PGPORT"):
        env.pop(variable, None)
    shell = Shell(project, env, port)
    auth = ANSWER_SETS[name].get("auth", "api_key")

    serve_block, requests_block = shell_blocks(section(readme, "Start"))[:2]
    assert serve_block == [f"uv run {package} dev"], serve_block
    commands = daily_commands(readme, package)
    assert {"dev", "pytest", "revision", "migrate", "current"} <= set(commands), commands

    with running(
        ["bash", "-c", shell.line(serve_block[0])],
        cwd=project,
        env=env,
        ready_url=f"http://127.0.0.1:{port}/health/ready",
        log=tmp_path / "dev.log",
    ) as dev:
        to_first_201 = time.perf_counter() - started
        create, listing = requests_block
        created = shell(create).stdout
        assert re.search(r"^HTTP/1\.1 201 Created", created, re.M), created
        assert "ada@example.com" in shell(listing).stdout
        (cluster,) = postmasters(project)  # the one `dev` started

        if auth == "api_key":  # a credential of the README's own, next to the development one
            key = shell(commands["api-key"]).stdout.strip()
            with_key = listing.replace("$(cat .local/credential)", key)
            assert "ada@example.com" in shell(with_key).stdout
            keys = shell(f"uv run {package} api-key list").stdout
            assert re.search(r"^\w+\s+me\s+read,write\s", keys, re.M), keys
        assert "(head)" in shell(commands["current"]).stdout

        # A new column on the model, its revision written by the README's command, then applied.
        model = project / "src" / package / "db" / "models" / "user.py"
        text = model.read_text()
        anchor = "    full_name: Mapped[str | None] = mapped_column(String(200))\n"
        model.write_text(text.replace(anchor, anchor + NEW_COLUMN))
        versions = project / "src" / package / "migrations" / "versions"
        existing = set(versions.iterdir())
        written = shell(commands["revision"])
        (revision,) = set(versions.iterdir()) - existing
        assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d{4}-[0-9a-f]{12}_\w+\.py", revision.name)
        assert 'op.add_column("users", sa.Column("nickname"' in revision.read_text()
        assert "renamed table or column shows as a drop and an add" in written.stderr
        applied = shell(commands["migrate"]).stderr
        assert f"-> {revision.name.split('-')[1].split('_')[0]}" in applied, applied

        assert postmasters(project) == {cluster}, "a command started a second cluster"
        assert stop(dev, signal.SIGINT)
        assert not leftovers(dev)
    assert not postmasters(project), "dev left its PostgreSQL running"
    log = (tmp_path / "dev.log").read_text()
    assert "Local PostgreSQL (started for this command): DATABASE_URL=postgresql://" in log
    credential = (project / ".local" / "credential").read_text().strip() if auth != "none" else ""
    assert not credential or credential not in log

    # With dev stopped, each command starts the local database for its own run and stops it.
    assert "(head)" in shell(commands["current"]).stdout
    unchanged = shell(commands["revision"]).stderr
    assert "no revision written" in unchanged
    assert not postmasters(project), "a command left its PostgreSQL running"

    # "I want products": the README's two resources, then one of every field type.
    before = len(list(versions.iterdir()))
    started_resources = time.perf_counter()
    shell(commands["new"])
    (products,) = re.findall(rf"`(uv run {package} new resource products [^`]+)`", readme)
    shell(products)
    shell(f"uv run {package} new resource {EVERY_FIELD}")
    resource_seconds = time.perf_counter() - started_resources
    assert len(list(versions.iterdir())) == before + 3
    shell(commands["ruff"])
    contract = (project / "openapi.json").read_text()
    shell(commands["openapi"])
    assert (project / "openapi.json").read_text() == contract, "new resource left openapi.json old"
    assert not postmasters(project), "the generator left its PostgreSQL running"

    suite = shell(commands["pytest"])
    summary = suite.stdout.strip().splitlines()[-1].strip("= ")
    passed = re.match(r"(\d+) passed", summary)
    assert passed, summary
    assert "failed" not in summary, summary
    assert "skipped" not in summary, summary
    assert int(passed.group(1)) >= 30
    report(f"first hour of {name} on {version}", to_first_201, "s", "from copy to a served 201")
    report(f"three resources for {name}", resource_seconds, "s", "`new resource` x3, then lint")
    suite_seconds = shell.seconds[commands["pytest"]]
    # AGENTS.md shows no command this newcomer's hour did not run.
    agents = (project / "AGENTS.md").read_text()
    shown = set(re.findall(r"`(uv run [^`]+)`", agents)) | set(
        re.findall(r"^(uv run .+)$", agents, re.M)
    )
    assert shown, "AGENTS.md shows no command"
    assert shown <= set(shell.seconds), shown - set(shell.seconds)
    report(f"generated suite of {name} on {version}", suite_seconds, "s wall", summary)


def test_first_hour_bad_command_line_is_one_line(rendered: Callable[[str], Path]) -> None:
    project = rendered("defaults")
    command = uv_sync(project) / package_of(project)

    result = subprocess.run(
        [command, "revison", "-m", "typo"],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "invalid choice: 'revison'" in result.stderr
