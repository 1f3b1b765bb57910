"""What a command of the integration CLI is, and how it says that a check failed."""

import argparse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any


class CheckFailed(Exception):  # noqa: N818 - it reads as the outcome the CLI reports
    """A check found the service misbehaving; the message says what it saw and expected."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help, its own arguments, and the check it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]]


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1, refused with the value quoted."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
