"""Persistence: the declarative base, the models, engines and units of work; never imports `api`."""
