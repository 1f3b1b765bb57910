"""Statements built once, at import, and run with bound parameters: one module per resource.

Building a statement and its cache key costs more than running it, so statements on hot paths
are module constants (`USER_BY_ID`) and values travel as parameters (`{"user_id": 1}`).
"""
