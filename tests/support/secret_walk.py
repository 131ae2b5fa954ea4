"""Walk everything a runtime object holds and report where a secret is not a `Secret`.

`leaks(roots, canaries)` follows dataclass fields, `__dict__`, `__slots__`,
tuples, lists, sets and dicts (keys too), closures and bound methods, and
for anything else the references the garbage collector knows of. It stops
at a `Secret` (its plaintext is meant to be there) and at the redactor's
compiled matcher (built from the plaintext by design, see
`runtime/response/redaction.py`). Every other string or bytes object that
holds a canary, raw or in base64, is a leak; so is a canary in the `repr()`
or `str()` of any object reached.
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aivault_ops.runtime.response.redaction import SecretRedactor, _Compiled
from aivault_ops.runtime.response.redaction_forms import base64_cores
from aivault_ops.secret import Secret

# Never entered: code and the interpreter's own objects hold no runtime state,
# an event loop holds whatever the test itself is doing.
_OPAQUE = (type, types.ModuleType, types.CodeType, types.FrameType, types.CoroutineType,
           types.GeneratorType, types.BuiltinFunctionType, asyncio.AbstractEventLoop)  # fmt: skip
_MATCHER = (_Compiled,)
_MATCHER_SLOTS = {(SecretRedactor, "_lower")}  # the lower-cased twin of the matcher


@dataclass
class Walk:
    """What a walk found: leaks by path, and the secrets it passed on the way."""

    canaries: tuple[str, ...]
    leaks: list[str] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    objects: int = 0

    def spellings(self) -> tuple[bytes, ...]:
        """Each canary raw and as base64 at any byte offset (as in a Basic header)."""
        found = {canary.encode() for canary in self.canaries}
        found |= {core for canary in self.canaries for core in base64_cores(canary.encode())}
        return tuple(sorted(found))

    def holding(self, canary: str) -> int:
        """How many `Secret`s reached hold `canary`."""
        return sum(canary.encode() in secret.reveal_bytes() for secret in self.secrets)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """(label, child) for everything `obj` refers to."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield "<key>", key
            yield f"[{key!r}]", value
    elif isinstance(obj, tuple | list | set | frozenset):
        for index, item in enumerate(obj):
            yield f"[{index}]", item
    elif isinstance(obj, types.FunctionType):
        for index, cell in enumerate(obj.__closure__ or ()):
            yield f".<closure {index}>", cell.cell_contents
        yield ".__defaults__", obj.__defaults__
        yield ".__kwdefaults__", obj.__kwdefaults__
    elif isinstance(obj, types.MethodType):
        yield ".__self__", obj.__self__
        yield ".__func__", obj.__func__
    else:
        yield from _attributes(obj)


def _attributes(obj: Any) -> Iterator[tuple[str, Any]]:
    seen = False
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if (cls, name) in _MATCHER_SLOTS or name in ("__dict__", "__weakref__"):
                continue
            seen = True
            try:
                yield f".{name}", object.__getattribute__(obj, name)
            except AttributeError:
                continue
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        seen = True
        for name, value in attributes.items():
            yield f".{name}", value
    if not seen:
        for index, referent in enumerate(gc.get_referents(obj)):
            yield f".<ref {index}>", referent


def _shown(obj: Any) -> Iterator[str]:
    for render in (repr, str):
        try:
            yield render(obj)
        except Exception as error:  # a repr that fails shows nothing
            yield type(error).__name__


def walk(roots: Iterable[tuple[str, Any]], canaries: Iterable[str]) -> Walk:
    """Walk from each (name, root); see the module docstring."""
    result = Walk(tuple(canaries))
    spellings = result.spellings()
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, bool | int | float):
            continue
        seen.add(id(obj))
        result.objects += 1
        if isinstance(obj, Secret):
            result.secrets.append(obj)
        elif isinstance(obj, str | bytes | bytearray | memoryview):
            data = obj.encode("utf-8", "surrogatepass") if isinstance(obj, str) else bytes(obj)
            if any(spelling in data for spelling in spellings):
                result.leaks.append(f"{path}: plain {type(obj).__name__} holds a secret")
            continue
        for text in _shown(obj):
            if any(spelling.decode() in text for spelling in spellings):
                result.leaks.append(f"{path}: repr() or str() shows a secret")
        if isinstance(obj, (Secret, *_OPAQUE, *_MATCHER)):
            continue
        stack.extend((path + label, child) for label, child in _children(obj))
    return result
