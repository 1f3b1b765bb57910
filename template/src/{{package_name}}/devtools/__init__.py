"""Development tools (a local PostgreSQL server); the running service never imports them."""
