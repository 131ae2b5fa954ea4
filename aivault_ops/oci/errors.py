"""Errors of the OCI layer, each with a stable code (see docs/fleet.md)."""

from __future__ import annotations

from aivault_ops.bundle.errors import BundleError


class OciError(BundleError):
    """The registry could not be reached or answered something unusable."""

    code = "E-OCI"


class OciReferenceError(OciError):
    """An `oci://` reference that is not HOST[:PORT]/REPO[:TAG|@DIGEST]."""

    code = "E-OCI-REFERENCE"


class OciUnavailable(OciError):
    """The registry is unreachable, timed out, or answered 5xx."""

    code = "E-OCI-UNAVAILABLE"


class OciBlobUnknown(OciError):
    """A manifest named a blob the registry does not have (MANIFEST_BLOB_UNKNOWN).

    The distribution registry also answers this for a moment while another client
    re-uploads the same blob (it rewrites the blob's link file in place).
    """


class OciDenied(OciError):
    """The registry refused the credentials (401/403)."""

    code = "E-OCI-DENIED"


class OciNotFound(OciError):
    """No such repository, tag or blob."""

    code = "E-OCI-NOT-FOUND"


class OciArtifactError(OciError):
    """A manifest or layer that is not an aivault-ops bundle artifact, or over its size cap."""

    code = "E-OCI-ARTIFACT"


class OciLockBusy(OciError):
    """Another apply holds the repository's publish lock."""

    code = "E-OCI-LOCKED"
