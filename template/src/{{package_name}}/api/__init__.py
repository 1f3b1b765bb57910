"""HTTP: dependencies, routers, schemas, error handlers and health checks."""
