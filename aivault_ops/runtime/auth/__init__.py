"""Auth strategies, one module each, selected by the registry's JSON spelling.

The registry and `build_injection` live in `strategies.py` and are loaded on
first use: the strategy modules import the signing and o_auth2 modules,
which import `auth.base`, so loading every strategy when this package is
imported would be circular.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aivault_ops.runtime.auth.base import AuthServices, AuthUnavailable, Injection
    from aivault_ops.runtime.auth.strategies import (
        STRATEGIES,
        build_injection,
        is_supported,
        secret_variables,
        strategy_of,
    )

__all__ = [
    "STRATEGIES",
    "AuthServices",
    "AuthUnavailable",
    "Injection",
    "build_injection",
    "is_supported",
    "secret_variables",
    "strategy_of",
]


def __getattr__(name: str) -> Any:
    """The names of `strategies.py` (and `base.py`), imported when first asked for."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from aivault_ops.runtime.auth import base, strategies

    return getattr(strategies, name, None) or getattr(base, name)
