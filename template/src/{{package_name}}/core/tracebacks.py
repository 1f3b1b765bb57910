"""Tracebacks without the values a request carried, for the error log.

An exception's message may quote request data: the driver's "invalid input for query argument
$1: 2147483648", pydantic's `input_value=...`, a `KeyError` of a user's key. The log keeps
every frame and the kind of each error, and of database errors the SQLSTATE and the names of
the table, column and constraint; messages only where data is one's own (development).
"""

import traceback
from collections.abc import Iterator

_SAFE_ATTRIBUTES = ("sqlstate", "table_name", "column_name", "constraint_name")
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"


def redacted_traceback(error: BaseException) -> str:
    """The frames of `error` and of its causes, oldest first, each error named by its kind."""
    parts = [
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(item.__traceback__))
        + describe(item)
        for item in reversed(list(_chain(error)))
    ]
    return _CAUSE.join(parts)


def describe(error: BaseException) -> str:
    """The error's class and what is safe to log of it, e.g. `IntegrityError (sqlstate 23502)`."""
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    sources = (error, getattr(error, "orig", None), getattr(error, "__cause__", None))
    facts = {
        attribute: value
        for source in sources
        for attribute in _SAFE_ATTRIBUTES
        if isinstance(value := getattr(source, attribute, None), str)
    }
    locations = _validation_locations(error)
    if locations:
        facts["fields"] = locations
    details = ", ".join(f"{key} {value}" for key, value in facts.items())
    return f"{name} ({details})" if details else name


def _validation_locations(error: BaseException) -> str:
    """Where a validation error found fault (`body.email: string_too_long`), not the input."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return ""
    try:
        items = errors()
    except Exception:  # not a validation error after all
        return ""
    return "; ".join(
        ".".join(map(str, item.get("loc", ()))) + f": {item.get('type', '?')}"
        for item in items
        if isinstance(item, dict)
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then its cause or context, and so on, as Python prints them."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
