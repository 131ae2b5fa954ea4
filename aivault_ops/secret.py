"""A secret value that never prints itself.

Decrypted values are wrapped in `Secret` as soon as they exist; `repr`,
`str` and formatting show `[secret]`, so a stray log line, exception or
f-string cannot leak the plaintext. Only `reveal()` returns it.
"""

from __future__ import annotations

import hmac
from typing import Final

MASK: Final = "[secret]"


class Secret:
    """An immutable secret string or byte value with a masked representation."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str | bytes:
        """The plaintext. Call only at the point of use (injection, `--reveal`)."""
        value: str | bytes = object.__getattribute__(self, "_value")
        return value

    def reveal_text(self) -> str:
        """The plaintext as text (bytes are decoded as UTF-8)."""
        value = self.reveal()
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        mine, theirs = self.reveal(), other.reveal()
        if isinstance(mine, str):
            mine = mine.encode()
        if isinstance(theirs, str):
            theirs = theirs.encode()
        return hmac.compare_digest(mine, theirs)

    def __hash__(self) -> int:
        return hash(self.reveal())

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Secret values cannot be pickled")
