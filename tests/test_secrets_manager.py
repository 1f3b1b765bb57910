"""Settings from AWS Secrets Manager, served by moto on loopback: optional, clear, rotatable."""

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from tests.local_postgres import require_password
from tests.service import free_port, migrate, running, stop
from tests.tools import UV, clean_environment, package_of, run, uv_sync

pytestmark = pytest.mark.generated

REGION = "eu-west-1"
MANAGED, MISSING, PLAIN = "demo/production", "demo/missing", "demo/plain"  # secret names
PASSWORD, ROTATED = "Manager-pw-1", "Rotated-pw-2"  # of a throwaway role
ROLE, DATABASE = "manager_owner", "manager"
UNREACHABLE_URL = "postgresql://app@127.0.0.1:9/app"  # never reached: settings fail first
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Moto's server mode on a free loopback port, stopped when the module's tests are done."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    ready = f"{endpoint}/moto-api/data.json"
    env = clean_environment()
    with running(command, cwd=log.parent, env=env, ready_url=ready, log=log) as moto:
        yield endpoint
        stop(moto, signal.SIGTERM)


@pytest.fixture(scope="module")
def secrets(moto_endpoint: str) -> Any:
    """A Secrets Manager client of moto's, as an operator's `aws secretsmanager` would be."""
    credentials = {key.lower(): value for key, value in FAKE_CREDENTIALS.items()}
    return boto3.client(
        "secretsmanager", region_name=REGION, endpoint_url=moto_endpoint, **credentials
    )


def aws_environment(endpoint: str, secret_name: str | None, **settings: str) -> dict[str, str]:
    """A project's environment with fake credentials and moto's endpoint, none of the host's."""
    environment = {k: v for k, v in clean_environment().items() if not k.startswith("AWS_")}
    if secret_name is not None:
        settings["AWS_SECRETS_MANAGER_SECRET_ID"] = secret_name
    return {
        **environment,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,  # boto3 honours it: every call goes to moto
        "AWS_CONFIG_FILE": "/nonexistent",  # no profile of the machine's
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",  # never look for instance credentials
        "AWS_REGION": REGION,
        **settings,
    }


@pytest.fixture(scope="module")
def aws_command(rendered: Callable[[str], Path]) -> Path:
    """The defaults project's command, installed with the `aws` extra in a virtualenv beside it."""
    project = rendered("defaults")
    venv = project.parent / "venv-aws"
    command = (UV, "sync", "--quiet", "--compile-bytecode")
    env = clean_environment(UV_PROJECT_ENVIRONMENT=str(venv))
    run(*command, "--extra", "aws", cwd=project, env=env)
    return venv / "bin" / package_of(project)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The line a refused command names the variable in, checking there is nothing else."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    header, line = result.stderr.splitlines()
    assert header.endswith(": invalid settings:"), header
    return line


def test_secrets_manager_default_install_has_no_boto3_and_names_the_extra(
    rendered: Callable[[str], Path],
) -> None:
    project = rendered("defaults")
    bin_dir = uv_sync(project)

    imported = run(bin_dir / "python", "-c", "import boto3", cwd=project, check=False)
    assert "No module named 'boto3'" in imported.stderr

    env = clean_environment(DATABASE_URL=UNREACHABLE_URL)
    env["AWS_SECRETS_MANAGER_SECRET_ID"] = MANAGED
    refused = migrate(str(bin_dir / package_of(project)), project, env)
    assert one_line_error(refused) == (
        "AWS_SECRETS_MANAGER_SECRET_ID: AWS Secrets Manager needs the aws extra (boto3): "
        "run `uv sync --extra aws`"
    )


def test_secrets_manager_password_reaches_the_engine_and_rotates_at_restart(
    rendered: Callable[[str], Path],
    aws_command: Path,
    secrets: Any,
    moto_endpoint: str,
    postgres: Any,
    tmp_path: Path,
) -> None:
    project = rendered("defaults")
    postgres.create_database(DATABASE)
    with_password = require_password(postgres, DATABASE, ROLE, PASSWORD)
    url = with_password.replace(f":{PASSWORD}@", "@")  # the password comes from the manager
    port = free_port()
    env = aws_environment(moto_endpoint, None, DATABASE_URL=url, PORT=str(port))

    # Off by default: without the secret's id no password is sent, and the server refuses.
    assert migrate(str(aws_command), project, env).returncode != 0

    secrets.create_secret(Name=MANAGED, SecretString=json.dumps({"DATABASE_PASSWORD": PASSWORD}))
    env = aws_environment(moto_endpoint, MANAGED, DATABASE_URL=url, PORT=str(port))
    first_migration = migrate(str(aws_command), project, env)
    assert first_migration.returncode == 0, first_migration.stderr
    ready = f"http://127.0.0.1:{port}/health/ready"  # 200: the engine's password was right
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    serve = [str(aws_command), "serve"]
    with running(serve, cwd=project, env=env, ready_url=ready, log=first) as service:
        assert stop(service, signal.SIGTERM)

    # Rotation: the secret and the role change together; a restarted service reads the new one.
    secrets.put_secret_value(
        SecretId=MANAGED, SecretString=json.dumps({"DATABASE_PASSWORD": ROTATED})
    )
    rotate = f"ALTER ROLE {ROLE} PASSWORD '{ROTATED}'"
    postgres.psql(f"SET password_encryption = 'scram-sha-256'; {rotate}")
    with running(serve, cwd=project, env=env, ready_url=ready, log=second) as service:
        assert stop(service, signal.SIGTERM)

    # The environment outranks the secret; the secret outranks a `.env` in the working folder.
    overridden = migrate(str(aws_command), project, {**env, "DATABASE_PASSWORD": PASSWORD})
    assert 'password authentication failed for user "manager_owner"' in overridden.stderr
    (tmp_path / ".env").write_text(f"DATABASE_PASSWORD={PASSWORD}\n")
    migrated = migrate(str(aws_command), tmp_path, env)
    assert migrated.returncode == 0, migrated.stderr

    outputs = [result.stdout + result.stderr for result in (first_migration, overridden, migrated)]
    output = first.read_text() + second.read_text() + "".join(outputs)
    assert "Application startup complete." in output
    assert PASSWORD not in output
    assert ROTATED not in output


def test_secrets_manager_missing_secret_stops_the_commands_in_one_line(
    rendered: Callable[[str], Path], aws_command: Path, moto_endpoint: str
) -> None:
    project = rendered("defaults")
    env = aws_environment(moto_endpoint, MISSING, DATABASE_URL=UNREACHABLE_URL)

    for command in ("migrate", "serve"):
        refused = run(aws_command, command, cwd=project, env=env, check=False)
        assert one_line_error(refused) == (
            "AWS_SECRETS_MANAGER_SECRET_ID: cannot read the secret from AWS Secrets Manager: "
            "An error occurred (ResourceNotFoundException) when calling the GetSecretValue "
            "operation: Secrets Manager can't find the specified secret."
        )


def test_secrets_manager_secret_not_json_is_refused_without_its_value(
    rendered: Callable[[str], Path], aws_command: Path, secrets: Any, moto_endpoint: str
) -> None:
    project = rendered("defaults")
    secrets.create_secret(Name=PLAIN, SecretString=PASSWORD)  # the password alone, not JSON
    env = aws_environment(moto_endpoint, PLAIN, DATABASE_URL=UNREACHABLE_URL)

    refused = migrate(str(aws_command), project, env)
    assert one_line_error(refused) == (
        "AWS_SECRETS_MANAGER_SECRET_ID: the secret holds no JSON object of settings, "
        'such as {"DATABASE_PASSWORD": "..."}'
    )
    assert PASSWORD not in refused.stdout + refused.stderr
