"""The development credential: a file in `.local/` only its owner may read, and how to send it."""

import os
from pathlib import Path

CREDENTIAL_FILE = Path(".local") / "credential"
CREDENTIAL_USE = (
    "send it as `Authorization: Bearer $(cat .local/credential)`, or in /docs (Authorize)"
)


def keep_credential(text: str) -> Path:
    """Write the credential to `.local/credential`, readable by its owner only."""
    path = Path.cwd() / CREDENTIAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"{text}\n")
    return path
