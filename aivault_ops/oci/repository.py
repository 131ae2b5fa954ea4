"""Bundles in one OCI repository: `serial-<N>` tags, a moving tag, a publish lock.

Publishing mirrors a bundle directory: the serial is the newest
`serial-<N>` tag + 1, read under a lock so two concurrent applies never
publish the same serial. Registries offer no compare-and-swap on tags, so
the lock is built from tags alone (it works on any registry):

1. write a tag `aivault-ops-lock-<ms>-<nonce>` pointing at a manifest
   unique to this apply;
2. list the tags: if another lock tag younger than `LOCK_TTL_S` points at
   a held lock, step back (release ours), wait a random moment and retry;
3. publish; then re-point our lock tag at a "released" manifest and delete
   it where the registry allows deletes.

Two applies cannot both pass step 2: whichever listed second wrote its
tag after the first one's was already there. A crashed apply's lock
expires after `LOCK_TTL_S` (by the time in its tag name).

Lock tags do not pile up: a release that fails is tried again, and the
holder removes the lock tags it saw released, dangling or expired (a
crashed apply's, or one whose delete lost a race inside the registry).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aivault_ops.bundle.errors import BundleExists
from aivault_ops.bundle.source import BundleRef
from aivault_ops.oci.artifact import (
    ANNOTATION_LOCK_NONCE,
    EMPTY_BLOB,
    MAX_LAYER_BYTES,
    BundleArtifact,
    bundle_manifest,
    check_layer,
    lock_manifest,
    parse_bundle_manifest,
)
from aivault_ops.oci.client import FetchedManifest, RegistryClient
from aivault_ops.oci.credentials import find_login
from aivault_ops.oci.errors import OciBlobUnknown, OciError, OciLockBusy, OciNotFound
from aivault_ops.oci.reference import OciReference

SERIAL_TAG: Final = re.compile(r"serial-(0|[1-9][0-9]{0,18})")
LOCK_PREFIX: Final = "aivault-ops-lock-"
_LOCK_TAG: Final = re.compile(rf"{LOCK_PREFIX}([0-9]{{13}})-[0-9a-f]{{16}}")
LOCK_TTL_S: Final = 300.0
DEFAULT_LOCK_WAIT_S: Final = 60.0
DEFAULT_MOVING_TAG: Final = "latest"
RELEASED: Final = "released"
_BLOB_RACE_ATTEMPTS: Final = 5
_RELEASE_ATTEMPTS: Final = 4
_SWEEP_AT_MOST: Final = 16


def serial_tag(serial: int) -> str:
    """The immutable tag of one serial: `serial-<N>`."""
    return f"serial-{serial}"


def open_repository(
    reference: OciReference, *, plain_http: bool, environ: Mapping[str, str]
) -> OciRepository:
    """A repository client with the credentials the environment or docker config give."""
    login = find_login(reference.registry, environ)
    return OciRepository(RegistryClient(reference, login=login, plain_http=plain_http))


@dataclass(frozen=True)
class PulledBundle:
    """A bundle's bytes as pulled (layer digest checked, signature not yet)."""

    data: bytes
    manifest: FetchedManifest
    artifact: BundleArtifact


@dataclass
class OciRepository:
    """The bundles published in one repository (a `BundleSource` for plan and apply)."""

    client: RegistryClient
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def list(self) -> list[BundleRef]:
        """Every `serial-<N>` tag, by serial."""
        refs = []
        for tag in self.client.tags():
            match = SERIAL_TAG.fullmatch(tag)
            if match:
                refs.append(BundleRef(int(match.group(1)), tag))
        return sorted(refs)

    def path(self, ref: BundleRef) -> Path:
        """The tag, as a name for messages (`serial-<N>`)."""
        return Path(ref.name)

    def read(self, ref: BundleRef) -> bytes:
        """The bundle under `ref`'s tag (layer digest checked)."""
        return self.pull(ref.name).data

    def pull(self, ref: str) -> PulledBundle:
        """The bundle at tag or digest `ref`: manifest checked, layer capped and digest-checked."""
        fetched = self.client.get_manifest(ref)
        assert fetched is not None  # no etag was sent
        return self.pull_manifest(fetched)

    def pull_manifest(self, fetched: FetchedManifest) -> PulledBundle:
        """The layer of an already fetched manifest."""
        artifact = parse_bundle_manifest(fetched.raw)
        data = self.client.get_blob(artifact.layer_digest, MAX_LAYER_BYTES)
        check_layer(data, artifact)
        return PulledBundle(data, fetched, artifact)

    def publish(
        self,
        data: bytes,
        *,
        serial: int,
        revision: str,
        environment: str | None,
        moving_tag: str = DEFAULT_MOVING_TAG,
    ) -> str:
        """Push the bundle as `serial-<serial>`, then move `moving_tag`; the manifest digest.

        Call it under `lock()`; refuses a serial whose tag exists (never overwritten).
        """
        tag = serial_tag(serial)
        if tag in self.client.tags():
            raise BundleExists(
                f"{self.client.reference.name}:{tag} already exists; a published bundle is"
                " never overwritten",
                hint="use the next serial (apply picks newest + 1 under the publish lock)",
            )
        raw = bundle_manifest(data, serial=serial, revision=revision, environment=environment)
        digest = self._put_manifest(tag, raw, blobs=(EMPTY_BLOB, data))
        self.client.put_manifest(moving_tag, raw)
        return digest

    def _put_manifest(self, ref: str, raw: bytes, *, blobs: tuple[bytes, ...]) -> str:
        """Push `blobs`, then `raw` under `ref`, pushing again while the registry
        reports a blob unknown (it does, briefly, while another client uploads the
        same blob: the distribution registry rewrites the blob's link in place)."""
        for attempt in range(_BLOB_RACE_ATTEMPTS):
            for blob in blobs:
                self.client.push_blob(blob)
            try:
                return self.client.put_manifest(ref, raw)
            except OciBlobUnknown:
                if attempt == _BLOB_RACE_ATTEMPTS - 1:
                    raise
                self.sleep(random.uniform(0.02, 0.1) * 2**attempt)  # noqa: S311 (jitter)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def lock(self, wait_s: float = DEFAULT_LOCK_WAIT_S) -> Iterator[None]:
        """Hold the repository's publish lock (see the module docstring)."""
        deadline = time.monotonic() + wait_s
        for attempt in range(1_000_000):
            tag, nonce = self._lock_name()
            digest = self._put_manifest(tag, lock_manifest(nonce), blobs=(EMPTY_BLOB,))
            holder, stale = self._survey_locks(tag)
            if holder is None:
                for other in stale[:_SWEEP_AT_MOST]:
                    if not self._release(other, other.removeprefix(LOCK_PREFIX), held=None):
                        break  # the registry keeps tags (no deletes): leave the rest
                break
            self._release(tag, nonce, digest)
            if time.monotonic() >= deadline:
                raise OciLockBusy(
                    f"{self.client.reference.name}: another apply holds the publish lock"
                    f" ({holder})",
                    hint=f"retry when it is done; a crashed apply's lock expires after"
                    f" {LOCK_TTL_S:.0f} s",
                )
            self.sleep(random.uniform(0.05, 0.25) * min(8, 2**attempt))  # noqa: S311 (jitter)
        try:
            yield
        finally:
            self._release(tag, nonce, digest)

    def _lock_name(self) -> tuple[str, str]:
        nonce = f"{int(self.clock() * 1000):013d}-{secrets.token_hex(8)}"
        return f"{LOCK_PREFIX}{nonce}", nonce

    def _survey_locks(self, own: str) -> tuple[str | None, Sequence[str]]:
        """Another live, held lock's tag (or None), and the lock tags nobody holds."""
        now_ms = self.clock() * 1000
        stale: Sequence[str] = ()
        for tag in sorted(self.client.tags()):
            match = _LOCK_TAG.fullmatch(tag)
            if tag == own or match is None:
                continue
            if now_ms - int(match.group(1)) > LOCK_TTL_S * 1000 or not self._is_held(tag):
                stale = (*stale, tag)
            else:
                return tag, ()
        return None, stale

    def _is_held(self, tag: str) -> bool:
        try:
            fetched = self.client.get_manifest(tag)
        except OciNotFound:
            return False  # released and deleted meanwhile
        except OciError:
            return True  # unreadable now (the registry answers 400 while a delete is under
            # way): count it as held and back off; an abandoned lock still expires
        assert fetched is not None
        try:
            notes = json.loads(fetched.raw).get("annotations") or {}
        except (ValueError, AttributeError):
            return True  # not ours to judge: treat as held until it expires
        return not str(notes.get(ANNOTATION_LOCK_NONCE, "")).endswith(f"-{RELEASED}")

    def _release(self, tag: str, nonce: str, held: str | None) -> bool:
        """Point the lock tag at a "released" manifest, then delete it where allowed;
        whether the tag is gone.

        The registry deletes a manifest first and then looks up the tags naming
        it; a tag another client writes meanwhile can fail that lookup (HTTP 500
        from distribution), leaving our tag behind with its manifest gone. Putting
        the released manifest again brings it back, so the pair is retried.
        """
        for attempt in range(_RELEASE_ATTEMPTS):
            try:
                released = self.client.put_manifest(tag, lock_manifest(f"{nonce}-{RELEASED}"))
                deleted = self.client.delete_manifest(released)
            except OciError:
                self.sleep(random.uniform(0.02, 0.1) * 2**attempt)  # noqa: S311 (jitter)
                continue
            if deleted and held is not None:
                with contextlib.suppress(OciError):
                    self.client.delete_manifest(held)
            return deleted
        return False
