"""The answer sets the tests render, chosen to differ in every way a user's answers can."""

from typing import Any

ANSWER_SETS: dict[str, dict[str, Any]] = {
    # What `copier copy --defaults` gives for a plain name.
    "defaults": {"project_name": "Demo Service"},
    # Spaces, capitals and non-ASCII letters; no example API; an author.
    "unusual": {
        "project_name": "Café Überwachung Größe",
        "include_example_api": False,
        "author_name": "Zoë Ångström",
        "author_email": "zoe@example.com",
    },
    # The newest Python it offers, with the example API: rendered, linted and type-checked only,
    # since this machine may have no such interpreter to install it with.
    "newest_python": {
        "project_name": "Ledger API 3000",
        "python_version": "3.14",
        "description": "Keeps the books, in order.",
    },
}

# Sets whose generated project is installed and whose own test suite runs here.
RUNNABLE = ("defaults", "unusual")
