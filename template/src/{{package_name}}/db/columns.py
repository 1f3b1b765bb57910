"""What a model's column holds, for the schemas and commands that must refuse what it cannot.

Declared once, on the model (`String(320)`), and read where a value is checked, so a length
never drifts between the table and the API.
"""

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import QueryableAttribute


def length_of(column: QueryableAttribute[Any]) -> int:
    """The length a string column holds (`User.email`): what a schema lets a client send."""
    if not isinstance(column.type, String) or column.type.length is None:
        raise TypeError(f"{column} is not a string column of a given length")
    return column.type.length
