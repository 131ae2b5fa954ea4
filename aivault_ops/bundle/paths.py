"""Which entry paths a bundle may hold.

The same rule guards the builder (so a bad secret path never gets signed) and
the verifier (so a crafted archive cannot name a file outside the bundle).
"""

from __future__ import annotations

import re
from typing import Final

from aivault_ops.bundle.errors import EntryPathError

MANIFEST: Final = "manifest.json"
SIGNATURES: Final = "signatures.json"
POLICY: Final = "policy.json"
SECRETS_DIR: Final = "secrets/"

MAX_PATH_LENGTH: Final = 255
_SEGMENT = re.compile(r"[A-Za-z0-9_.@+-]+")


def check_entry_path(path: str) -> str:
    """Refuse any path that is not `manifest.json`, `signatures.json`,
    `policy.json` or a plain relative `secrets/…` path; return it unchanged.

    Prevents path traversal and confusion: absolute paths, `..` and `.`
    segments, empty segments (`a//b`, trailing `/`), backslashes, control and
    non-ASCII characters (look-alike names) are all refused, so one file has
    exactly one spelling and never lands outside the bundle.
    """
    if path in (MANIFEST, SIGNATURES, POLICY):
        return path
    if path.startswith("/"):
        raise EntryPathError(f"{path!r}: absolute paths are not allowed in a bundle")
    segments = path.split("/")
    if ".." in segments:
        raise EntryPathError(f"{path!r}: '..' is not allowed in a bundle path")
    if len(path) > MAX_PATH_LENGTH:
        raise EntryPathError(f"{path[:40]!r}…: longer than {MAX_PATH_LENGTH} characters")
    if not path.startswith(SECRETS_DIR):
        raise EntryPathError(
            f"{path!r}: a bundle holds only manifest.json, signatures.json, policy.json"
            " and secrets/…"
        )
    for segment in segments[1:]:
        if segment == "." or not _SEGMENT.fullmatch(segment):
            raise EntryPathError(
                f"{path!r}: path segments must be non-empty, not '.', and use only"
                " letters, digits and _.@+-"
            )
    return path
