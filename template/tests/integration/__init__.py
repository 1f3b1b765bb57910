"""Integration checks: drive a running instance of the service over HTTP, from outside.

The project's own tests run the app in-process; these run against whatever `--app-url` names (a
local `serve`, the app CI starts, a staging deployment), through httpx only, so they see what a
client sees: real workers, real connection pools, a real network hop.

    uv run python -m tests.integration --help

Each command is a module here with one `COMMAND` (see `command.Command`), listed in
`commands.py`. To check a resource of your own, copy the shape of `health.py`: a module
defining `COMMAND = Command(name, help, add_arguments, run)`, where `run` raises `CheckFailed`
with a message naming what went wrong; then add it to `COMMANDS` in `commands.py`.
"""
