"""Background jobs on the service's PostgreSQL: enqueued with a write, run by `worker`."""
