"""What a model's column holds, for the schemas and commands that must refuse what it cannot.

Declared once, on the model (`String(320)`), and read where a value is checked, so a length
never drifts between the table and the API.
"""

from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String
from sqlalchemy.orm import QueryableAttribute

# The integers JSON carries exactly (I-JSON, RFC 7493): a BIGINT's range is cut to these.
MAX_JSON_INTEGER = 2**53 - 1


def length_of(column: QueryableAttribute[Any]) -> int:
    """The length a string column holds (`User.email`): what a schema lets a client send."""
    if not isinstance(column.type, String) or column.type.length is None:
        raise TypeError(f"{column} is not a string column of a given length")
    return column.type.length


class IntegerRange(NamedTuple):
    """The smallest and largest integer a column holds."""

    low: int
    high: int


class Digits(NamedTuple):
    """How many digits an exact number holds, and how many of them after the point."""

    precision: int
    scale: int


def range_of(column: QueryableAttribute[Any]) -> IntegerRange:
    """The integers an integer column holds, within what JSON carries exactly."""
    bits = {SmallInteger: 16, BigInteger: 64, Integer: 32}
    for kind, width in bits.items():
        if isinstance(column.type, kind):
            high = min(2 ** (width - 1) - 1, MAX_JSON_INTEGER)
            return IntegerRange(-high - (1 if width < 64 else 0), high)
    raise TypeError(f"{column} is not an integer column")


def digits_of(column: QueryableAttribute[Any]) -> Digits:
    """The digits a NUMERIC(precision, scale) column holds."""
    kind = column.type
    if not isinstance(kind, Numeric) or kind.precision is None or kind.scale is None:
        raise TypeError(f"{column} is not a NUMERIC column of a given precision and scale")
    return Digits(kind.precision, kind.scale)
