"""What a request value may be, so that it fits the database: out of bounds is a 422, never SQL.

Ids and offsets are integers from 0 or 1 to 2**53 - 1: the columns are BIGINT, and I-JSON
(RFC 7493) keeps JSON integers within that range, since many parsers (JavaScript's first) read
numbers as doubles. PostgreSQL text holds any character but NUL. Use them for every id, offset
and text a client sends:

    async def get_user(user_id: RowId, ...)                  # a path or query parameter
    async def list_users(limit: Limit, offset: Offset, ...)  # the page of a list
    title: Text = Field(min_length=1, max_length=200)        # a body field, as long as its column
"""

from typing import Annotated

from annotated_types import Ge, Le
from fastapi import Query
from pydantic import Field

MAX_JSON_INTEGER = 2**53 - 1

RowId = Annotated[int, Ge(1), Le(MAX_JSON_INTEGER)]
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
# The query parameters of a list: how many items to return, after skipping how many.
Limit = Annotated[int, Query(ge=1, le=100, description="How many items to return.")]
Offset = Annotated[int, Ge(0), Le(MAX_JSON_INTEGER), Query(description="How many items to skip.")]
