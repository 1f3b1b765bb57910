"""The base of partial-update bodies: a field left out stays as it is.

A field whose column may be null is `x: str | None = None`: null clears it. A field whose
column may not is `x: Annotated[str, Field(default=None)]`: pydantic refuses an explicit null
with a 422 naming it, and the OpenAPI document shows no null. Endpoints apply
`model_dump(exclude_unset=True)`, so a default never reaches the database.
"""

from pydantic import BaseModel


class PartialUpdate(BaseModel):
    """Only the fields a client sends are changed."""
