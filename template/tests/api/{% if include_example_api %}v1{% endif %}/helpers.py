"""Small factories: make rows through the API, the same path clients take."""

import itertools
from typing import Any

from fastapi import status
from httpx import AsyncClient

_numbers = itertools.count(1)


async def create_user(client: AsyncClient, **fields: Any) -> dict[str, Any]:
    """Create a user with a unique email unless one is given; return its body."""
    number = next(_numbers)
    body = {"email": f"user{number}@example.com", "full_name": f"User {number}", **fields}
    response = await client.post("/api/v1/users", json=body)
    assert response.status_code == status.HTTP_201_CREATED, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_post(client: AsyncClient, author_id: int, **fields: Any) -> dict[str, Any]:
    """Create a post by this author; return its body."""
    body = {"title": "A title", "body": "Some text.", "author_id": author_id, **fields}
    response = await client.post("/api/v1/posts", json=body)
    assert response.status_code == status.HTTP_201_CREATED, response.text
    created: dict[str, Any] = response.json()
    return created
