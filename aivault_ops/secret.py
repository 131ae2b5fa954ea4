"""A secret value that never prints itself.

Decrypted values are wrapped in `Secret` as soon as they exist; `repr`,
`str` and formatting show `[secret]`, so a stray log line, exception or
f-string cannot leak the plaintext. Only the `reveal*` methods return it.

The runtime keeps every injected value as a `Secret` (a rendered header,
a query value, a path prefix, a signing key, an OAuth2 token) and reveals
it only where bytes are written: the upstream request head, a signature,
a token endpoint request, the redactor's matcher. Text added before or
after a secret (`"Bearer " + token`) gives another `Secret`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

MASK: Final = "[secret]"


class Secret:
    """An immutable secret string or byte value with a masked representation.

    The text and byte forms are computed once, on first use, so revealing
    on every request costs an attribute read.
    """

    __slots__ = ("_bytes", "_text", "_value")
    _bytes: bytes
    _text: str
    _value: str | bytes

    def __init__(self, value: str | bytes) -> None:
        _set_value(self, value)
        if isinstance(value, str):
            _set_text(self, value)
        else:
            _set_bytes(self, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str | bytes:
        """The plaintext. Call only at the point of use (injection, `--reveal`)."""
        value: str | bytes = self._value
        return value

    def reveal_text(self) -> str:
        """The plaintext as text (bytes are decoded as UTF-8, once)."""
        try:
            return self._text
        except AttributeError:
            text = self._bytes.decode("utf-8")
            _set_text(self, text)
            return text

    def reveal_bytes(self) -> bytes:
        """The plaintext as bytes (text is encoded as UTF-8, once)."""
        try:
            return self._bytes
        except AttributeError:
            data = self._text.encode("utf-8")
            _set_bytes(self, data)
            return data

    def __add__(self, other: str) -> Secret:
        """This secret followed by `other`: a new `Secret`."""
        if not isinstance(other, str):
            return NotImplemented
        return Secret(self.reveal_text() + other)

    def __radd__(self, other: str) -> Secret:
        """`other` followed by this secret: a new `Secret`."""
        if not isinstance(other, str):
            return NotImplemented
        return Secret(other + self.reveal_text())

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.reveal_bytes(), other.reveal_bytes())

    def __hash__(self) -> int:
        return hash(self.reveal_bytes())

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Secret values cannot be pickled")


# The slots' own setters: `__setattr__` refuses every write, and these are
# about twice as fast as `object.__setattr__` (a path prefix makes one
# `Secret` per request).
_Setter = Callable[[Secret, object], None]
_set_value: Final[_Setter] = Secret.__dict__["_value"].__set__
_set_text: Final[_Setter] = Secret.__dict__["_text"].__set__
_set_bytes: Final[_Setter] = Secret.__dict__["_bytes"].__set__


def wire_text(value: str | Secret) -> str:
    """`value` as it goes on the wire: text as is, a `Secret` revealed.

    For the code that writes a request (the head writer, signers, the
    token endpoint form) and nothing else.
    """
    return value if isinstance(value, str) else value.reveal_text()
