"""One module per subcommand, found automatically.

Each module exposes `register(subparsers)`, which adds its parser and sets
`func` to a small adapter (`from_args`, or `<action>_from_args` in a command
group) that maps the parsed options onto the command's typed function:
`run_<command>(*, …) -> int`, keyword-only arguments, returning the exit
code. Only the adapters see `argparse.Namespace`; tests and other code call
the typed functions. Modules import heavy dependencies inside their command
functions so that `aivault-ops --help` stays fast.
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
