"""Errors the application raises on purpose; `api.errors` maps each to an HTTP status.

AppError
├── NotFoundError: a row the request names does not exist (404)
└── DatabaseUnavailableError: no connection to the database could be opened (503)
"""


class AppError(Exception):
    """Base of the errors the service raises deliberately."""


class NotFoundError(AppError):
    """A row the request names does not exist."""

    def __init__(self, resource: str, key: object) -> None:
        """Name the missing row, e.g. `NotFoundError("user", 42)`."""
        super().__init__(f"There is no {resource} with id {key}.")
        self.resource = resource
        self.key = key


class DatabaseUnavailableError(AppError):
    """Opening a connection failed: the server is down, restarting, full or unreachable."""

    def __init__(self, role: str, cause: BaseException) -> None:
        """Name the role and the kind of failure, never its message (it may hold a host)."""
        super().__init__(f"the {role} database is unavailable ({type(cause).__name__})")
        self.role = role
