"""Rename an answer in a project's `.copier-answers.yml`: `rename_answer.py OLD NEW`.

Run by copier before an update that crosses the release which renamed the question, so the
project's old answer is read under its new name instead of being lost to a default. Idempotent:
it does nothing when OLD is absent or NEW is already there. Standard library only, since it runs
with copier's interpreter, and line-based, so the file's comments and order survive.
"""

import re
import sys
from pathlib import Path

ANSWERS_FILE = Path(".copier-answers.yml")


def rename(text: str, old: str, new: str) -> str:
    """Return the answers text with the top-level key OLD renamed to NEW, if that applies."""
    has_old = re.search(rf"^{re.escape(old)}:", text, flags=re.MULTILINE)
    has_new = re.search(rf"^{re.escape(new)}:", text, flags=re.MULTILINE)
    if not has_old or has_new:
        return text
    return re.sub(rf"^{re.escape(old)}:", f"{new}:", text, count=1, flags=re.MULTILINE)


def main(arguments: list[str]) -> int:
    """Rename the answer in the current folder's answers file."""
    if len(arguments) != 2:
        print("usage: rename_answer.py OLD NEW", file=sys.stderr)
        return 2
    old, new = arguments
    text = ANSWERS_FILE.read_text()
    ANSWERS_FILE.write_text(rename(text, old, new))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
