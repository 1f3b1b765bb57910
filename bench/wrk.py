"""Run wrk against a server and read its report."""

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).parent
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Report:
    """What one wrk run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def find_wrk() -> str:
    """The wrk binary, or an error saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("The benchmark needs wrk: `apt-get install wrk` (or `brew install wrk`).")
    return found


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def parse(output: str) -> Report:
    """Read wrk's `--latency` report."""

    def number(pattern: str, default: str = "0") -> str:
        found = re.search(pattern, output)
        return found.group(1) if found else default

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Report(
        requests_per_second=float(number(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_milliseconds(number(r"50%\s+([\d.]+\w+)", "0ms")),
        p99_ms=_milliseconds(number(r"99%\s+([\d.]+\w+)", "0ms")),
        requests=int(number(r"(\d+) requests in")),
        non_2xx=int(number(r"Non-2xx or 3xx responses: (\d+)")),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run_wrk(
    url: str,
    script: str,
    seconds: int,
    connections: int,
    env: dict[str, str],
    headers: Mapping[str, str] | None = None,
) -> Report:
    """Drive `url` for `seconds` over `connections` keep-alive connections.

    Every request carries `headers` (the scripts add theirs to wrk's).
    """
    command = [
        find_wrk(),
        "--threads",
        "2",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--latency",
        "--script",
        str(SCRIPTS / script),
        *(f"--header={name}: {value}" for name, value in (headers or {}).items()),
        url,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return parse(result.stdout)
