"""One module per subcommand, found automatically.

Each module exposes `register(subparsers)`, which adds its parser and sets
`func` to a function taking the parsed namespace and returning an exit code.
Modules import heavy dependencies inside their command functions so that
`aivault-ops --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def _load() -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    return [
        importlib.import_module(f"{__name__}.{name}") for name in names if not name.startswith("_")
    ]


COMMAND_MODULES: list[ModuleType] = _load()
