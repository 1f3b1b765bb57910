"""The committed OpenAPI documents of generated projects, rewritten from what they serve.

A change to the template's API (a route, a schema, a documented problem) changes the document
each project commits as `openapi.json`. `nox -s openapi` renders the project with and without
the example API, asks each for its document (`<package> openapi`) and writes the two template
files, the project's name put back as a template variable; the generated suites' contract test
fails until this has run.
"""

import subprocess
import tempfile
from pathlib import Path

from tests.conftest import ROOT, render, snapshot_template
from tests.tools import clean_environment, uv_sync

NAME = "Demo Service"
SNAPSHOTS = {
    True: ROOT / "template" / "{% if include_example_api %}openapi.json{% endif %}.jinja",
    False: ROOT / "template" / "{% if not include_example_api %}openapi.json{% endif %}.jinja",
}


def served_document(template: Path, destination: Path, example: bool) -> str:
    """Render and install a project, and return the OpenAPI document it prints."""
    project = render(template, destination, {"project_name": NAME, "include_example_api": example})
    command = uv_sync(project) / "demo_service"
    result = subprocess.run(
        [command, "openapi"], cwd=project, env=clean_environment(), capture_output=True, text=True
    )
    result.check_returncode()
    return result.stdout


def main() -> None:
    """Rewrite both snapshots from freshly rendered projects."""
    with tempfile.TemporaryDirectory() as folder:
        template = snapshot_template(Path(folder) / "keel")
        for example, snapshot in SNAPSHOTS.items():
            document = served_document(template, Path(folder) / f"project-{example}", example)
            title = f'"title": "{NAME}"'
            if document.count(title) != 1:
                raise SystemExit(f"expected the title once in the document: {title}")
            snapshot.write_text(document.replace(title, '"title": "{{ project_name.strip() }}"'))
            print(f"wrote {snapshot.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
