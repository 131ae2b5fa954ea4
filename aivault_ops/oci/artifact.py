"""The bundle as an OCI artifact: its manifest, built and checked (pure).

Following the OCI image spec's guidance for artifacts: an image manifest
with `artifactType` set, the empty config descriptor, and the bundle
`.tar.gz` as its single layer. Annotations carry the serial, revision and
environment so `oras manifest fetch` and registry UIs show them; they are
hints only: a runtime trusts nothing but the signed manifest inside the
bundle. The same bundle always gives the same manifest bytes (no
timestamp), so the same digest.

Everything read back from a registry is untrusted: sizes are capped before
parsing, the layer's digest is checked on download, and a manifest that is
not exactly this shape is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from aivault_ops.bundle.source import MAX_BUNDLE_BYTES, bundle_file_name
from aivault_ops.canonical_json import canonical_json
from aivault_ops.oci.errors import OciArtifactError

MANIFEST_MEDIA_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE: Final = "application/vnd.aivault-ops.bundle.v1"
LAYER_MEDIA_TYPE: Final = "application/vnd.aivault-ops.bundle.v1.tar+gzip"
LOCK_ARTIFACT_TYPE: Final = "application/vnd.aivault-ops.lock.v1"
EMPTY_MEDIA_TYPE: Final = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB: Final = b"{}"
ANNOTATION_SERIAL: Final = "dev.aivault-ops.bundle.serial"
ANNOTATION_REVISION: Final = "dev.aivault-ops.bundle.revision"
ANNOTATION_ENVIRONMENT: Final = "dev.aivault-ops.bundle.environment"
ANNOTATION_LOCK_NONCE: Final = "dev.aivault-ops.lock.nonce"
ANNOTATION_TITLE: Final = "org.opencontainers.image.title"
ANNOTATION_OCI_REVISION: Final = "org.opencontainers.image.revision"
MAX_MANIFEST_BYTES: Final = 64 * 1024
MAX_LAYER_BYTES: Final = MAX_BUNDLE_BYTES


def digest_of(data: bytes) -> str:
    """`sha256:<hex>` of `data`, the OCI content digest."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


EMPTY_DESCRIPTOR: Final = {**_descriptor(EMPTY_MEDIA_TYPE, EMPTY_BLOB), "data": "e30="}


def bundle_manifest(bundle: bytes, *, serial: int, revision: str, environment: str | None) -> bytes:
    """The manifest bytes that publish `bundle` (canonical JSON: one bundle, one digest)."""
    layer = _descriptor(LAYER_MEDIA_TYPE, bundle)
    layer["annotations"] = {ANNOTATION_TITLE: bundle_file_name(serial)}
    annotations = {
        ANNOTATION_SERIAL: str(serial),
        ANNOTATION_REVISION: revision,
        ANNOTATION_OCI_REVISION: revision,
        ANNOTATION_ENVIRONMENT: environment or "",
    }
    return _manifest(ARTIFACT_TYPE, [layer], annotations)


def lock_manifest(nonce: str) -> bytes:
    """A manifest unique to one apply (by its nonce): the repository's publish lock."""
    return _manifest(LOCK_ARTIFACT_TYPE, [EMPTY_DESCRIPTOR], {ANNOTATION_LOCK_NONCE: nonce})


def _manifest(
    artifact_type: str, layers: list[dict[str, Any]], annotations: dict[str, str]
) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": EMPTY_DESCRIPTOR,
        "layers": layers,
        "annotations": annotations,
    }
    return canonical_json(document)


@dataclass(frozen=True)
class BundleArtifact:
    """What a bundle artifact's manifest says (untrusted until the bundle verifies)."""

    layer_digest: str
    layer_size: int
    serial: int | None  # the annotation, a hint; the signed manifest decides
    revision: str | None


def parse_bundle_manifest(raw: bytes) -> BundleArtifact:
    """Check that `raw` is a bundle artifact's manifest; raise `OciArtifactError` if not.

    Prevents reading anything but one capped, digest-named bundle layer from
    an untrusted registry: wrong media or artifact type, no or several
    layers, a bad digest or an oversized layer are refused before download.
    """
    if len(raw) > MAX_MANIFEST_BYTES:
        raise OciArtifactError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OciArtifactError("the manifest is not JSON") from None
    if not isinstance(document, dict) or document.get("mediaType") != MANIFEST_MEDIA_TYPE:
        raise OciArtifactError(f"not an OCI image manifest ({MANIFEST_MEDIA_TYPE})")
    if document.get("artifactType") != ARTIFACT_TYPE:
        raise OciArtifactError(
            f"artifactType is {document.get('artifactType')!r}, expected {ARTIFACT_TYPE!r}"
        )
    layers = document.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise OciArtifactError("a bundle artifact has exactly one layer")
    return _artifact(layers[0], document.get("annotations"))


def _artifact(layer: dict[str, Any], annotations: object) -> BundleArtifact:
    digest, size = layer.get("digest"), layer.get("size")
    if layer.get("mediaType") != LAYER_MEDIA_TYPE:
        raise OciArtifactError(f"the layer's mediaType is not {LAYER_MEDIA_TYPE!r}")
    if not isinstance(digest, str) or len(digest) != 71 or not digest.startswith("sha256:"):
        raise OciArtifactError("the layer's digest is not sha256:<64 hex>")
    if not all(c in "0123456789abcdef" for c in digest[7:]):
        raise OciArtifactError("the layer's digest is not sha256:<64 hex>")
    if type(size) is not int or not 0 < size <= MAX_LAYER_BYTES:
        raise OciArtifactError(f"the layer's size must be 1 to {MAX_LAYER_BYTES} bytes")
    notes = annotations if isinstance(annotations, dict) else {}
    serial_text = notes.get(ANNOTATION_SERIAL)
    serial = int(serial_text) if isinstance(serial_text, str) and serial_text.isdigit() else None
    revision = notes.get(ANNOTATION_REVISION)
    return BundleArtifact(digest, size, serial, revision if isinstance(revision, str) else None)


def check_layer(data: bytes, artifact: BundleArtifact) -> None:
    """Refuse layer bytes whose size or sha256 differ from the manifest's descriptor.

    Prevents a registry (or a proxy before it) from swapping the bytes under
    a manifest; the bundle's own signature is checked after this.
    """
    if len(data) != artifact.layer_size or digest_of(data) != artifact.layer_digest:
        raise OciArtifactError(
            f"the layer does not match its descriptor ({artifact.layer_digest[:19]}…)"
        )
