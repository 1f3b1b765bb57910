"""HTTP: dependencies, input types, routers, schemas, the error contract and the middleware."""
