"""Settings, read from the environment (and `.env` in development) by pydantic-settings.

Nothing is read at import time: `get_settings()` builds the settings on first use, and tests or
tools build their own `Settings(...)` to run against another database.
"""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg"}


def parse_database_url(value: object) -> URL:
    """Parse a PostgreSQL URL and point it at the asyncpg driver; say what is wrong if not."""
    if isinstance(value, URL):
        url = value
    else:
        try:
            url = make_url(str(value))
        except Exception:
            raise ValueError(
                "expected a URL like postgresql://user:password@host:5432/database"
            ) from None
    if url.drivername not in _POSTGRES_DRIVERS:
        raise ValueError(f"expected a postgresql:// URL, got the scheme {url.drivername!r}")
    if not url.host and not url.query.get("host"):
        raise ValueError("the URL names no host; expected postgresql://user@host/database")
    return url.set(drivername="postgresql+asyncpg")


# NoDecode: the variable holds a URL, not JSON.
DatabaseURL = Annotated[URL, NoDecode, BeforeValidator(parse_database_url)]


class Settings(BaseSettings):
    """Every knob of the service; each field is read from the upper-case variable of its name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", arbitrary_types_allowed=True)

    environment: Literal["development", "test", "production"] = "production"

    # The primary (writer) and an optional replica (reader); without a replica the reader uses
    # the primary through a read-only transaction.
    database_url: DatabaseURL
    database_read_url: DatabaseURL | None = None

    # Per engine and per worker process: size them against the server's max_connections.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    database_pool_timeout: float = Field(default=5.0, gt=0)
    database_pool_recycle: int = Field(default=1800, ge=-1)
    database_statement_timeout_ms: int = Field(default=30_000, ge=0)
    database_echo: bool = False

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=1, ge=1)
    graceful_shutdown_seconds: int = Field(default=20, ge=1)

    @property
    def reader_url(self) -> URL:
        """The URL reads go to: the replica when configured, else the primary."""
        return self.database_read_url or self.database_url


@lru_cache
def get_settings() -> Settings:
    """Build the settings from the environment once, on first use."""
    return Settings()
