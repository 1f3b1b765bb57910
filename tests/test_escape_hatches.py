"""The two escape hatches an existing codebase needs, proven in a generated project.

1. Its own declarative base: `db/base.py` re-exports it, and migrations, the error contract and
   the tests' clean-up all follow, because they read `Base.metadata` from there only.
2. Its own session factory: `create_app(open_database=...)` opens a `Database` whose units of
   work use the factory it was given.
"""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local_postgres import load
from tests.tools import clean_environment, run, uv_sync

pytestmark = pytest.mark.generated

PACKAGE = "cafe_uberwachung_grosse"  # the "unusual" answer set: no example API

LEGACY_MODELS = '''"""Models of an existing codebase, with a declarative base of their own."""

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class LegacyBase(DeclarativeBase):
    """A base that predates the service, with its own naming convention."""

    metadata = MetaData(
        naming_convention={"pk": "legacy_pk_%(table_name)s", "uq": "legacy_uq_%(column_0_name)s"}
    )


class Account(LegacyBase):
    """An account of the old system."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(40), unique=True)
'''

LEGACY_KEYS_ACCEPTED = """
squawk_accepted = {
    "prefer-identity": "the old system's accounts keep their SERIAL keys",
}
"""

OWN_BASE = f'''"""The declarative base: here, the existing codebase's own."""

from {PACKAGE}.db.legacy_models import LegacyBase as Base

__all__ = ["Base"]
'''

OWN_BASE_TESTS = '''"""The own base's tables are migrated and its constraints described."""

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from __PACKAGE__.api.errors.constraints import describe_violation
from __PACKAGE__.db.database import Database


async def test_own_base_table_is_migrated(database: Database) -> None:
    async with database.writer() as session:
        await session.execute(text("INSERT INTO accounts (handle) VALUES ('ada')"))
    async with database.snapshot() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM accounts")) == 1


async def test_own_base_constraint_is_described(database: Database) -> None:
    async with database.writer() as session:
        await session.execute(text("INSERT INTO accounts (handle) VALUES ('bob')"))
    try:
        async with database.writer() as session:
            await session.execute(text("INSERT INTO accounts (handle) VALUES ('bob')"))
    except IntegrityError as error:
        assert describe_violation(error) == (
            "legacy_uq_handle",
            "accounts.handle must be unique: another row already has this value.",
        )
    else:
        raise AssertionError("the duplicate handle was accepted")
'''

OWN_SESSIONS_TESTS = f'''"""A session factory of one's own serves the units of work of requests."""

import dataclasses

from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {PACKAGE}.api.deps import DatabaseDep
from {PACKAGE}.core.settings import Settings
from {PACKAGE}.db.database import Database
from {PACKAGE}.main import create_app


class AuditedSession(AsyncSession):
    """A session class an existing codebase might already use."""


def open_database(settings: Settings) -> Database:
    """Open the database as usual, with the writer's sessions from an own factory."""
    database = Database.from_settings(settings)
    own = async_sessionmaker(database.writer_engine, class_=AuditedSession)
    return dataclasses.replace(database, writer_sessions=own)


router = APIRouter()


@router.get("/session-classes")
async def session_classes(database: DatabaseDep) -> list[str]:
    """Name the classes of what the units of work give the endpoint."""
    async with database.writer() as writer, database.snapshot() as reader:
        return [type(writer).__name__, type(reader).__name__]


async def test_own_session_factory_serves_requests(settings: Settings) -> None:
    app = create_app(settings, open_database=open_database)
    app.include_router(router)

    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://localhost") as client,
    ):
        response = await client.get("/session-classes")

    assert response.json() == ["AuditedSession", "AsyncSession"]
'''


def test_escape_hatches_own_base_and_own_session_factory(
    fresh_project: Callable[[str], Path],
) -> None:
    project = fresh_project("unusual")
    package = project / "src" / PACKAGE
    (package / "db" / "legacy_models.py").write_text(LEGACY_MODELS)
    (package / "db" / "base.py").write_text(OWN_BASE)
    # The template's mixin and key types went with its base, and so does their test.
    (project / "tests" / "db" / "test_base.py").unlink()
    (project / "tests" / "test_own_base.py").write_text(
        OWN_BASE_TESTS.replace("__PACKAGE__", PACKAGE)
    )
    (project / "tests" / "test_own_sessions.py").write_text(OWN_SESSIONS_TESTS)
    bin_dir = uv_sync(project)

    with load().LocalPostgres() as postgres:
        env = clean_environment(DATABASE_URL=postgres.url)
        versions = package / "migrations" / "versions"
        before = set(versions.glob("*.py"))
        # The template's own revisions first (its API keys' table): autogenerate wants a
        # database at head, as an owner's would be.
        run(bin_dir / PACKAGE, "migrate", cwd=project, env=env)
        run(
            bin_dir / "alembic",
            "revision",
            "--autogenerate",
            "-m",
            "own base",
            cwd=project,
            env=env,
        )
        (revision,) = set(versions.glob("*.py")) - before
        # The legacy table keeps its SERIAL int key: the owner takes squawk's two rules on.
        revision.write_text(revision.read_text() + LEGACY_KEYS_ACCEPTED)
        # The owner's tests and the database's (the migration gate, the units of work, the
        # clean-up between tests, all of which read the base), not the whole suite again.
        own = ("tests/test_own_base.py", "tests/test_own_sessions.py", "tests/db")
        suite = (bin_dir / "python", "-m", "pytest", "-v", "-p", "no:cacheprovider", *own)
        result = run(*suite, cwd=project, env=clean_environment(TEST_DATABASE_URL=postgres.url))

    for test in (
        "test_own_base.py::test_own_base_table_is_migrated",
        "test_own_base.py::test_own_base_constraint_is_described",
        "test_own_sessions.py::test_own_session_factory_serves_requests",
        "db/test_migrations.py::test_migrations_match_the_models",
    ):
        assert f"tests/{test} PASSED" in result.stdout, result.stdout
