"""The peer: the service's two endpoints as tutorials and popular templates write them.

FastAPI with a SQLAlchemy ORM model, a session per request from a yield dependency,
`session.get` to read, add/commit/refresh to create, `pool_pre_ping`, an `EmailStr` body and a
response model. A typical service a team would otherwise start from, measured beside Keel's.

Run with the rendered project's Python (it has every package this needs):
`PEER_DATABASE_URL=postgresql+asyncpg://... uvicorn bench.peer:app`.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Response, status  # type: ignore[import-not-found]
from pydantic import BaseModel, ConfigDict, EmailStr
from sqlalchemy import DateTime, String, func  # type: ignore[import-not-found]
from sqlalchemy.ext.asyncio import (  # type: ignore[import-not-found]
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # type: ignore[import-not-found]


class Base(DeclarativeBase):
    """The models' base."""


class User(Base):
    """A row of the users table the service's migrations made."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserCreate(BaseModel):
    """What a client sends."""

    email: EmailStr
    full_name: str | None = None


class UserPublic(BaseModel):
    """What the API shows."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str | None
    created_at: datetime
    updated_at: datetime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One engine per app, with a pool like the service's writer pool."""
    size = int(os.environ.get("PEER_POOL_SIZE", "10"))
    engine = create_async_engine(
        os.environ["PEER_DATABASE_URL"],
        pool_size=size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "peer"}},
    )
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


async def get_session() -> AsyncIterator[AsyncSession]:
    """A session per request (set on the app by the lifespan)."""
    async with app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@app.get("/api/v1/users/{user_id}", response_model=UserPublic)
async def get_user(user_id: int, session: SessionDep) -> User:
    """One user by id, or 404."""
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "User not found")
    return user


@app.post("/api/v1/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, session: SessionDep, response: Response) -> User:
    """Insert a user; 201 with its Location."""
    user = User(**body.model_dump())
    session.add(user)
    await session.commit()
    await session.refresh(user)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user
