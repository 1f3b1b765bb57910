"""`python -m tests.integration COMMAND --app-url URL`: exit 0 when the checks pass, 1 when not.

A failure prints one line naming what was wrong (stderr), so CI logs say it without a traceback.
An API that needs a credential gets it from `--api-key`, or better from the API_KEY variable: a
command line is visible to every user of the machine. Without either, the development credential
`dev` keeps in `.local/credential` is sent, if there is one. The key itself is never printed.
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.integration.client import unreachable
from tests.integration.command import CheckFailed
from tests.integration.commands import COMMANDS


def parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per command, each taking `--app-url` and `--api-key`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--app-url",
        required=True,
        metavar="URL",
        help="where the app serves, e.g. http://127.0.0.1:8000",
    )
    common.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY") or development_credential(),
        metavar="KEY",
        # The default is the key itself: it never goes into the help.
        help="the API key sent as `Authorization: Bearer KEY` (default: the API_KEY environment"
        " variable, which keeps the key off the command line, else .local/credential); never"
        " printed",
    )
    root = argparse.ArgumentParser(
        prog="python -m tests.integration",
        description="Check a running instance of the service over HTTP.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = commands.add_parser(
            command.name, parents=[common], help=command.help, description=command.help
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return root


def development_credential() -> str | None:
    """The credential `dev` keeps for the developer, if this is a project it ran in."""
    path = Path(".local") / "credential"
    return path.read_text().strip() or None if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command given; return the exit status."""
    arguments = parser().parse_args(argv)
    try:
        asyncio.run(arguments.run(arguments))
    except httpx.TransportError as error:
        problem = unreachable(arguments.app_url, error)
    except CheckFailed as failure:
        problem = str(failure)
    else:
        return 0
    print(f"{arguments.command}: FAILED: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
