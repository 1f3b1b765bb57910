"""The users endpoints: the happy paths and every error of the contract."""

from datetime import datetime

import pytest
from fastapi import status
from httpx import AsyncClient

from tests.api.v1.helpers import create_post, create_user


async def test_create_user_returns_201_with_location(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users", json={"email": "ada@example.com", "full_name": "Ada Lovelace"}
    )

    assert response.status_code == status.HTTP_201_CREATED
    user = response.json()
    assert user["email"] == "ada@example.com"
    assert user["created_at"] == user["updated_at"]
    assert response.headers["location"] == f"/api/v1/users/{user['id']}"


async def test_created_user_is_readable_at_once(client: AsyncClient) -> None:
    user = await create_user(client)

    response = await client.get(f"/api/v1/users/{user['id']}")

    assert response.status_code == status.HTTP_200_OK
    assert response.json() == user


async def test_create_user_with_taken_email_is_409(client: AsyncClient) -> None:
    await create_user(client, email="taken@example.com")

    response = await client.post(
        "/api/v1/users", json={"email": "taken@example.com", "full_name": "Someone Else"}
    )

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["constraint"] == "uq_users_email"
    assert "INSERT" not in problem["detail"]


async def test_create_user_with_bad_email_is_422_naming_the_field(client: AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={"email": "nope", "full_name": "X"})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "email"]]


async def test_get_missing_user_is_404(client: AsyncClient) -> None:
    response = await client.get("/api/v1/users/999999")

    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json()["detail"] == "There is no user with id 999999."


async def test_list_users_pages_with_limit_and_offset(client: AsyncClient) -> None:
    users = [await create_user(client) for _ in range(5)]

    response = await client.get("/api/v1/users", params={"limit": 2, "offset": 1})

    assert response.status_code == status.HTTP_200_OK
    assert [user["id"] for user in response.json()] == [users[1]["id"], users[2]["id"]]


async def test_list_users_refuses_limit_out_of_bounds(client: AsyncClient) -> None:
    for limit in (0, 101):
        response = await client.get("/api/v1/users", params={"limit": limit})

        assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
        assert response.json()["errors"][0]["loc"] == ["query", "limit"]


async def test_update_user_changes_only_sent_fields(client: AsyncClient) -> None:
    user = await create_user(client, full_name="Before")

    response = await client.patch(f"/api/v1/users/{user['id']}", json={"full_name": "After"})

    assert response.status_code == status.HTTP_200_OK
    updated = response.json()
    assert updated["full_name"] == "After"
    assert updated["email"] == user["email"]


async def test_update_user_stamps_updated_at_not_created_at(client: AsyncClient) -> None:
    user = await create_user(client)

    response = await client.patch(f"/api/v1/users/{user['id']}", json={"full_name": "After"})

    updated = response.json()
    before, after = (datetime.fromisoformat(body["updated_at"]) for body in (user, updated))
    assert after > before  # the update's own transaction, so a later now()
    assert updated["created_at"] == user["created_at"]


async def test_update_user_null_clears_a_nullable_field(client: AsyncClient) -> None:
    user = await create_user(client, full_name="Ada")

    response = await client.patch(f"/api/v1/users/{user['id']}", json={"full_name": None})

    assert response.status_code == status.HTTP_200_OK
    assert response.json()["full_name"] is None


async def test_update_user_refuses_null_for_a_field_that_cannot_be_null(
    client: AsyncClient,
) -> None:
    user = await create_user(client)

    response = await client.patch(f"/api/v1/users/{user['id']}", json={"email": None})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["errors"][0]["loc"] == ["body", "email"]


async def test_update_user_to_taken_email_is_409(client: AsyncClient) -> None:
    await create_user(client, email="first@example.com")
    second = await create_user(client)

    response = await client.patch(
        f"/api/v1/users/{second['id']}", json={"email": "first@example.com"}
    )

    assert response.status_code == status.HTTP_409_CONFLICT
    assert response.json()["constraint"] == "uq_users_email"


async def test_update_missing_user_is_404(client: AsyncClient) -> None:
    response = await client.patch("/api/v1/users/999999", json={"full_name": "Nobody"})

    assert response.status_code == status.HTTP_404_NOT_FOUND


async def test_delete_user_is_204_and_deletes_their_posts(client: AsyncClient) -> None:
    user = await create_user(client)
    post = await create_post(client, author_id=user["id"])

    response = await client.delete(f"/api/v1/users/{user['id']}")

    assert response.status_code == status.HTTP_204_NO_CONTENT
    assert (await client.get(f"/api/v1/users/{user['id']}")).status_code == 404
    assert (await client.get(f"/api/v1/posts/{post['id']}")).status_code == 404


async def test_delete_missing_user_is_404(client: AsyncClient) -> None:
    response = await client.delete("/api/v1/users/999999")

    assert response.status_code == status.HTTP_404_NOT_FOUND


@pytest.mark.parametrize("user_id", [0, -1, 2**53, 2**63])
async def test_user_ids_out_of_range_are_422_naming_the_path(
    client: AsyncClient, user_id: int
) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"/api/v1/users/{user_id}", json={})

        assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT, method
        assert response.json()["errors"][0]["loc"] == ["path", "user_id"]


async def test_list_users_refuses_an_offset_past_the_largest_id(client: AsyncClient) -> None:
    response = await client.get("/api/v1/users", params={"offset": 99999999999999999999})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["errors"][0]["loc"] == ["query", "offset"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("full_name", "Ada\x00Lovelace"), ("full_name", "x" * 201), ("email", "a\x00@example.com")],
)
async def test_create_user_refuses_what_the_column_cannot_hold(
    client: AsyncClient, field: str, value: str
) -> None:
    body = {"email": "ada@example.com", "full_name": "Ada", field: value}

    response = await client.post("/api/v1/users", json=body)

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert [error["loc"] for error in response.json()["errors"]] == [["body", field]]
