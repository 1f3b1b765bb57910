"""The posts endpoints: the happy paths, filtering by author and every error of the contract."""

import pytest
from fastapi import status
from httpx import AsyncClient

from tests.api.v1.helpers import create_post, create_user


async def test_create_post_returns_201_with_location(client: AsyncClient) -> None:
    author = await create_user(client)

    response = await client.post(
        "/api/v1/posts", json={"title": "Hello", "body": "First.", "author_id": author["id"]}
    )

    assert response.status_code == status.HTTP_201_CREATED
    post = response.json()
    assert post["author_id"] == author["id"]
    assert response.headers["location"] == f"/api/v1/posts/{post['id']}"
    assert (await client.get(response.headers["location"])).json() == post


async def test_create_post_for_missing_author_is_409(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/posts", json={"title": "Orphan", "body": "No author.", "author_id": 999999}
    )

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["constraint"] == "fk_posts_author_id_users"


async def test_create_post_without_title_is_422(client: AsyncClient) -> None:
    author = await create_user(client)

    response = await client.post("/api/v1/posts", json={"body": "x", "author_id": author["id"]})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["errors"][0]["loc"] == ["body", "title"]


async def test_list_posts_filters_by_author(client: AsyncClient) -> None:
    ada, bob = await create_user(client), await create_user(client)
    adas = [await create_post(client, author_id=ada["id"]) for _ in range(2)]
    await create_post(client, author_id=bob["id"])

    response = await client.get("/api/v1/posts", params={"author_id": ada["id"]})

    assert response.status_code == status.HTTP_200_OK
    assert response.json() == adas


async def test_list_posts_pages_with_limit_and_offset(client: AsyncClient) -> None:
    author = await create_user(client)
    posts = [await create_post(client, author_id=author["id"]) for _ in range(3)]

    response = await client.get("/api/v1/posts", params={"limit": 1, "offset": 2})

    assert response.json() == [posts[2]]


async def test_update_post_changes_only_sent_fields(client: AsyncClient) -> None:
    post = await create_post(client, author_id=(await create_user(client))["id"])

    response = await client.patch(f"/api/v1/posts/{post['id']}", json={"title": "Renamed"})

    assert response.status_code == status.HTTP_200_OK
    assert response.json()["title"] == "Renamed"
    assert response.json()["body"] == post["body"]


async def test_update_missing_post_is_404(client: AsyncClient) -> None:
    response = await client.patch("/api/v1/posts/999999", json={"title": "Nothing"})

    assert response.status_code == status.HTTP_404_NOT_FOUND


async def test_delete_post_is_204_then_404(client: AsyncClient) -> None:
    post = await create_post(client, author_id=(await create_user(client))["id"])

    assert (await client.delete(f"/api/v1/posts/{post['id']}")).status_code == 204
    assert (await client.delete(f"/api/v1/posts/{post['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("author_id", 2**53),
        ("author_id", 99999999999999999999),
        ("author_id", 0),
        ("title", "a\x00b"),
        ("body", "a\x00b"),
        ("body", "x" * 10_001),
    ],
)
async def test_create_post_refuses_what_the_database_cannot_hold(
    client: AsyncClient, field: str, value: object
) -> None:
    author = await create_user(client)
    body = {"title": "T", "body": "B", "author_id": author["id"], field: value}

    response = await client.post("/api/v1/posts", json=body)

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]


async def test_list_posts_refuses_an_author_id_out_of_range(client: AsyncClient) -> None:
    response = await client.get("/api/v1/posts", params={"author_id": 2**63})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["errors"][0]["loc"] == ["query", "author_id"]
