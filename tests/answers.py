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
    # A package that sorts after `tests`, and digits in the name: import blocks must not care.
    "after_tests": {"project_name": "Warehouse 2", "python_version": "3.12"},
    # Every name at its longest: a 64-column title, a 40-character slug and package.
    "longest": {
        "project_name": "Zürich Warehouse Inventory and Shipping Ledger Reconciliation v2",
        "project_slug": "zurich-warehouse-inventory-shipping-ledg",
        "package_name": "zz_warehouse_inventory_shipping_ledger_r",
        "include_example_api": True,
        "python_version": "3.13",
    },
    # The newest Python it offers, with the example API: rendered, linted and type-checked only,
    # since this machine may have no such interpreter to install it with.
    "newest_python": {
        "project_name": "Ledger API 3000",
        "python_version": "3.14",
        "description": "Keeps the books, in order.",
    },
}

# The set whose project installs every optional dependency: the modules a package may not
# shadow are read from its virtualenv (tests/module_names.py).
EVERY_DEPENDENCY = "defaults"

# Sets whose generated project is installed and whose own test suite runs here.
RUNNABLE = ("defaults", "unusual")
