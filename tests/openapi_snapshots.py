"""The committed OpenAPI documents of generated projects, rewritten from what they serve.

A change to the template's API (a route, a schema, a documented problem) changes the document
each project commits as `openapi.json`. `nox -s openapi` renders a project of each shape of the
API (without the example API; with it, under each `auth`), asks each for its document
(`<package> openapi`) and writes the snapshots `template/openapi.json.jinja` includes, the
project's name put back as a template variable; the generated suites' contract test fails until
this has run.
"""

import subprocess
import tempfile
from pathlib import Path

from tests.conftest import ROOT, render, snapshot_template
from tests.tools import clean_environment, uv_sync

NAME = "Demo Service"
SNAPSHOTS = ROOT / "includes" / "openapi"
# Each snapshot, by the answers of the shape it holds (`auth` adds nothing without routes).
SHAPES: dict[str, dict[str, object]] = {
    "no-example": {"include_example_api": False, "auth": "none"},
    "example-none": {"include_example_api": True, "auth": "none"},
    "example-api_key": {"include_example_api": True, "auth": "api_key"},
    "example-oidc": {"include_example_api": True, "auth": "oidc"},
}


def served_document(template: Path, destination: Path, answers: dict[str, object]) -> str:
    """Render and install a project, and return the OpenAPI document it prints."""
    project = render(template, destination, {"project_name": NAME, **answers})
    command = uv_sync(project) / "demo_service"
    result = subprocess.run(
        [command, "openapi"], cwd=project, env=clean_environment(), capture_output=True, text=True
    )
    result.check_returncode()
    return result.stdout


def main() -> None:
    """Rewrite every snapshot from freshly rendered projects."""
    with tempfile.TemporaryDirectory() as folder:
        template = snapshot_template(Path(folder) / "keel")
        for shape, answers in SHAPES.items():
            snapshot = SNAPSHOTS / f"{shape}.json"
            document = served_document(template, Path(folder) / shape, answers)
            title = f'"title": "{NAME}"'
            if document.count(title) != 1:
                raise SystemExit(f"expected the title once in the document: {title}")
            snapshot.write_text(document.replace(title, '"title": "{{ project_name.strip() }}"'))
            print(f"wrote {snapshot.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
