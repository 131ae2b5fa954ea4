"""Where `plan` reads and `apply` publishes: a bundle directory or an OCI repository.

Both give the same three things: a lock that keeps concurrent applies from
publishing the same serial, a source `read_target` lists and reads, and a
publish that never overwrites a serial.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aivault_ops.errors import UsageError
from aivault_ops.oci.reference import OciReference, is_oci, parse_reference
from aivault_ops.oci.repository import DEFAULT_MOVING_TAG, OciRepository, open_repository
from aivault_ops.published_bundles import ListedSource


def parse_target(text: str) -> Path | OciReference:
    """`--target`: `oci://HOST[:PORT]/REPO[:TAG]` or a directory path."""
    return parse_reference(text, what="--target") if is_oci(text) else Path(text)


class Target(Protocol):
    """A place bundles are published to."""

    @property
    def source(self) -> Path | ListedSource:
        """What `read_target` lists and reads."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the target's publish lock."""
        ...

    def publish(self, data: bytes, *, serial: int, revision: str, environment: str | None) -> str:
        """Publish `data` as `serial`; where it went, for the user."""
        ...

    def name_for(self, serial: int) -> str:
        """What publishing `serial` would create, for a dry run."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass
class DirectoryTarget:
    """`bundle-<serial>.tar.gz` files in a directory (created when missing)."""

    source: Path

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """`flock` on the directory's lock file."""
        from aivault_ops.bundle.publish import target_lock

        self.source.mkdir(parents=True, exist_ok=True)
        return target_lock(self.source)

    def publish(self, data: bytes, *, serial: int, revision: str, environment: str | None) -> str:
        """Temp file, fsync, link: see bundle/publish.py."""
        from aivault_ops.bundle.publish import publish_bundle

        return str(publish_bundle(self.source, data, serial))

    def name_for(self, serial: int) -> str:
        """`bundle-<serial>.tar.gz`."""
        return f"bundle-{serial}.tar.gz"

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class RegistryTarget:
    """An OCI repository: `serial-<N>` tags and a moving tag (the reference's, or latest)."""

    reference: OciReference
    source: OciRepository

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """The repository's tag-based publish lock."""
        return self.source.lock()

    def publish(self, data: bytes, *, serial: int, revision: str, environment: str | None) -> str:
        """Push the artifact under `serial-<N>` and the moving tag."""
        moving = self.reference.tag or DEFAULT_MOVING_TAG
        digest = self.source.publish(
            data, serial=serial, revision=revision, environment=environment, moving_tag=moving
        )
        return f"{self.reference.name}:serial-{serial} ({moving} → {digest})"

    def name_for(self, serial: int) -> str:
        """`oci://…:serial-<serial>`."""
        return f"{self.reference.name}:serial-{serial}"

    def close(self) -> None:
        """Close the registry session."""
        self.source.client.close()


@contextlib.contextmanager
def open_target(
    target: Path | OciReference, *, plain_http: bool, environ: Mapping[str, str]
) -> Iterator[Target]:
    """The target for `--target`, closed on exit."""
    opened: Target
    if isinstance(target, Path):
        if plain_http:
            raise UsageError("--plain-http applies to an oci:// target only")
        opened = DirectoryTarget(target)
    else:
        if target.digest:
            raise UsageError(f"--target {target}: publish to a repository or a tag, not a digest")
        opened = RegistryTarget(
            target, open_repository(target, plain_http=plain_http, environ=environ)
        )
    try:
        yield opened
    finally:
        opened.close()
