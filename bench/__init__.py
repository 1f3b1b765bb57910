"""The benchmark: the generated service against a raw asyncpg baseline, in one run."""
