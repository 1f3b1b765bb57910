"""Settings and cross-cutting concerns; imports nothing from `api` or `db`."""
