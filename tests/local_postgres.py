"""The template's own PostgreSQL launcher, loaded from its file in `template/`.

The generated projects ship `db/local_postgres.py` (standard library only, no template syntax);
the template's tests start their servers with that very file, so it is tested where it lives.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SOURCE = (
    Path(__file__).resolve().parent.parent
    / "template"
    / "src"
    / "{{package_name}}"
    / "db"
    / "local_postgres.py"
)


def load() -> ModuleType:
    """Import the launcher module from the template's source tree (once)."""
    name = "keel_local_postgres"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SOURCE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
