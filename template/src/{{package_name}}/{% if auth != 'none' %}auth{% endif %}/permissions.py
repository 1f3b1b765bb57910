"""What a caller may do, and who it is once its credential is checked."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Permission(StrEnum):
    """A permission a route requires: `read` for reads, `write` for anything that changes data."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its name (a key's name, a token's subject) and permissions."""

    name: str
    permissions: frozenset[Permission]


class Authenticator(Protocol):
    """Checks a bearer credential: the caller it proves, or None when it proves nothing."""

    async def authenticate(self, credential: str) -> Principal | None:
        """The caller this credential belongs to; None if it is invalid, expired or revoked.

        An error of `core.errors` instead when it cannot be checked now (a database or an
        issuer down): the client gets that error's status (503), not a 401.
        """
        ...
