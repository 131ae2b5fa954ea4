"""`oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`, parsed and checked (pure).

The repository, tag and digest grammars are the OCI distribution spec's.
A reference never carries credentials: `user:pass@` in it is refused, so a
password cannot end up in argv, a log line or `/status`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Final

from aivault_ops.oci.errors import OciReferenceError

SCHEME: Final = "oci://"
_HOST = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
MAX_REPOSITORY: Final = 255


def is_oci(text: str) -> bool:
    """True for an `oci://` reference (anything else is a directory path)."""
    return text.startswith(SCHEME)


@dataclass(frozen=True)
class OciReference:
    """A repository in a registry, optionally with a tag or a digest."""

    registry: str  # host[:port], as written (IPv6 in brackets)
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def host(self) -> str:
        """The host without port or brackets."""
        match = _HOST.fullmatch(self.registry)
        host = match.group("host") if match else self.registry
        return host.removeprefix("[").removesuffix("]")

    @property
    def is_loopback(self) -> bool:
        """True for `localhost` and loopback addresses (where plain HTTP may be allowed)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def name(self) -> str:
        """`oci://registry/repository` without tag or digest."""
        return f"{SCHEME}{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> OciReference:
        """The same repository at `tag`."""
        return replace(self, tag=_checked_tag(tag), digest=None)

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}" if self.tag else self.name


def parse_reference(text: str, *, what: str = "reference") -> OciReference:
    """Parse `oci://HOST[:PORT]/REPO[:TAG|@DIGEST]`; raise `OciReferenceError` saying why not."""
    if not is_oci(text):
        raise _bad(text, what, "expected oci://HOST[:PORT]/REPOSITORY[:TAG]")
    rest = text[len(SCHEME) :]
    registry, slash, path = rest.partition("/")
    if "@" in registry:
        raise _bad(text, what, "credentials do not belong in a reference", hint=_CREDENTIALS)
    match = _HOST.fullmatch(registry)
    if not slash or not match or not path:
        raise _bad(text, what, "expected oci://HOST[:PORT]/REPOSITORY[:TAG]")
    if match.group("port") and not 0 < int(match.group("port")) < 65536:
        raise _bad(text, what, "the port must be 1-65535")
    path, at, digest = path.partition("@")
    repository, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if at and not colon and _TAG.fullmatch(digest) and not digest.startswith("sha256"):
        colon, tag, at, digest = ":", digest, "", ""  # `REPO@TAG` read as `REPO:TAG`
    if at and not _DIGEST.fullmatch(digest):
        raise _bad(text, what, "a digest is sha256: and 64 lowercase hex digits")
    if not _REPOSITORY.fullmatch(repository) or len(repository) > MAX_REPOSITORY:
        raise _bad(text, what, "the repository is lowercase path components (a-z 0-9 . _ -)")
    if colon and not _TAG.fullmatch(tag):
        raise _bad(text, what, "a tag is up to 128 of A-Z a-z 0-9 _ . - (not starting with . or -)")
    return OciReference(registry, repository, tag or None, digest or None)


def _checked_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise OciReferenceError(f"{tag!r} is not a valid tag")
    return tag


_CREDENTIALS = (
    "log in with `docker login` (the docker config) or set AIVAULT_OPS_REGISTRY_USERNAME"
    " and AIVAULT_OPS_REGISTRY_PASSWORD"
)


def _bad(text: str, what: str, reason: str, *, hint: str | None = None) -> OciReferenceError:
    registry = text.removeprefix(SCHEME).partition("/")[0]
    shown = "oci://…" if "@" in registry else text  # never echo a password
    return OciReferenceError(f"{what} {shown!r}: {reason}", hint=hint)
