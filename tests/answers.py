"""The answer sets the tests render, chosen to differ in every way a user's answers can."""

from typing import Any

ANSWER_SETS: dict[str, dict[str, Any]] = {
    # What `copier copy --defaults` gives for a plain name: API keys, the example API.
    "defaults": {"project_name": "Demo Service"},
    # Bearer tokens from an OIDC issuer, on the example API.
    "identity": {"project_name": "Token Service", "auth": "oidc", "include_jobs": True},
    # Spaces, capitals and non-ASCII letters; no example API (API keys all the same); an author;
    # the oldest Python offered, which projects from before 3.13 became the default keep.
    "unusual": {
        "project_name": "Café Überwachung Größe",
        "python_version": "3.11",
        "include_example_api": False,
        "author_name": "Zoë Ångström",
        "author_email": "zoe@example.com",
        "include_jobs": True,
    },
    # A package that sorts after `tests`, and digits in the name: import blocks must not care.
    # No authentication: the example API open, as a project updated from before `auth` has it.
    "after_tests": {"project_name": "Warehouse 2", "python_version": "3.12", "auth": "none"},
    # Every name at its longest: a 64-column title, a 40-character slug and package.
    "longest": {
        "project_name": "Zürich Warehouse Inventory and Shipping Ledger Reconciliation v2",
        "project_slug": "zurich-warehouse-inventory-shipping-ledg",
        "package_name": "zz_warehouse_inventory_shipping_ledger_r",
        "include_example_api": True,
        "python_version": "3.12",
        "auth": "oidc",
    },
    # The newest Python it offers, with the example API: rendered, linted and type-checked only,
    # since this machine may have no such interpreter to install it with.
    "newest_python": {
        "project_name": "Ledger API 3000",
        "python_version": "3.14",
        "description": "Keeps the books, in order.",
        "auth": "none",
    },
}

# The set whose project installs every optional dependency: the modules a package may not
# shadow are read from its virtualenv (tests/module_names.py).
EVERY_DEPENDENCY = "identity"

# Sets whose generated project is installed and whose own test suite runs here: each `auth`
# with the example API, and API keys without it.
RUNNABLE = ("defaults", "identity", "after_tests", "unusual")
