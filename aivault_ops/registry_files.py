"""Reading provider JSON files for `registry lint` and a policy repo's own `registry/`.

JSON is parsed strictly with `json`; value positions come from parsing the
same text as YAML (JSON is YAML), so every lint finding points at a line and
column. A file that is not JSON becomes one `E-REGISTRY-JSON` diagnostic.
"""

from __future__ import annotations

import json
from pathlib import Path

from aivault_ops.bounded_read import read_at_most
from aivault_ops.diagnostics import Diagnostic, Location
from aivault_ops.manifests.yaml_positions import Positions, YamlProblem, load_documents
from aivault_ops.registry_lint import ProviderFile

REGISTRY_DIR_NAME = "registry"
MAX_PROVIDER_FILE_BYTES = 1 << 20


def read_provider_file(path: Path, display: str) -> ProviderFile | Diagnostic:
    """`path` parsed, or the diagnostic saying why it cannot be (shown as `display`)."""
    try:
        with path.open("rb") as handle:
            raw = read_at_most(handle, MAX_PROVIDER_FILE_BYTES)
    except OSError as error:
        return Diagnostic(Location(display), "E-REGISTRY-JSON", f"cannot read: {error.strerror}")
    if len(raw) > MAX_PROVIDER_FILE_BYTES:
        return Diagnostic(Location(display), "E-REGISTRY-JSON", "larger than 1 MiB")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        return Diagnostic(Location(display), "E-REGISTRY-JSON", "not UTF-8 text")
    except json.JSONDecodeError as error:
        where = Location(display, error.lineno, error.colno)
        return Diagnostic(where, "E-REGISTRY-JSON", f"not valid JSON: {error.msg}")
    return ProviderFile(display, data, _positions(text))


def _positions(text: str) -> Positions:
    try:
        return next(load_documents(text)).positions
    except (YamlProblem, StopIteration):
        return Positions()


def repo_registry_files(root: Path) -> list[Path]:
    """The provider files in the policy repo's own `registry/` folder, sorted."""
    folder = root / REGISTRY_DIR_NAME
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(path for path in folder.glob("*.json") if path.is_file())
