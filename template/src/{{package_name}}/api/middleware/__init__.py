"""The HTTP edge: pure ASGI middleware, one per module, wired in order by `main.create_app`."""
