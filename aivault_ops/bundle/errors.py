"""Errors of the bundle library, each with a stable code users can search for.

`diagnostics()` renders `E-CODE: message`; callers that know the file add
their own `<path>: ` in front.
"""

from __future__ import annotations

from aivault_ops.errors import CodedError as CodedError


class BundleError(CodedError):
    """A bundle was refused, or could not be built or published."""

    code = "E-BUNDLE"


class ArchiveError(BundleError):
    """Not a gzip'd tar, truncated, or trailing data after the gzip stream."""

    code = "E-BUNDLE-ARCHIVE"


class BundleTooLarge(BundleError):
    """Over the size or member-count limit (a gzip bomb, or not a bundle)."""

    code = "E-BUNDLE-TOO-LARGE"


class MemberTypeError(BundleError):
    """A tar member that is not a regular file (link, device, fifo, directory)."""

    code = "E-BUNDLE-MEMBER-TYPE"


class EntryPathError(BundleError):
    """An entry path that is absolute, has `..` or `.` parts, or is not allowed."""

    code = "E-BUNDLE-PATH"


class DuplicateEntry(BundleError):
    """The same path appears twice in the archive."""

    code = "E-BUNDLE-DUPLICATE"


class UnlistedEntry(BundleError):
    """An archive entry that manifest.json does not list."""

    code = "E-BUNDLE-UNLISTED"


class MissingEntry(BundleError):
    """An entry that must exist (or that manifest.json lists) is absent."""

    code = "E-BUNDLE-MISSING"


class DigestMismatch(BundleError):
    """An entry's sha256 differs from the one in manifest.json."""

    code = "E-BUNDLE-DIGEST"


class Unsigned(BundleError):
    """No signatures.json, or an empty list of signatures."""

    code = "E-BUNDLE-UNSIGNED"


class BadSignature(BundleError):
    """A signature by a trusted key does not verify over manifest.json."""

    code = "E-BUNDLE-SIGNATURE"


class UntrustedSigner(BundleError):
    """Every signature is by a key that is not trusted."""

    code = "E-BUNDLE-UNTRUSTED"


class UnknownFormat(BundleError):
    """manifest.json names a format this version does not read."""

    code = "E-BUNDLE-FORMAT"


class MalformedJson(BundleError):
    """manifest.json, signatures.json or policy.json is not strict JSON."""

    code = "E-BUNDLE-JSON"


class ManifestInvalid(BundleError):
    """manifest.json is JSON but breaks its schema (field types, patterns)."""

    code = "E-BUNDLE-MANIFEST"


class SignaturesInvalid(BundleError):
    """signatures.json is JSON but breaks its schema."""

    code = "E-BUNDLE-SIGNATURES"


class PolicyRejected(BundleError):
    """policy.json is not an object, or the policy validator refused it."""

    code = "E-BUNDLE-POLICY"


class BundleExpired(BundleError):
    """The bundle's `expiresAt` is not after now."""

    code = "E-BUNDLE-EXPIRED"


class BundleExists(BundleError):
    """A bundle with this serial is already published; it is never overwritten."""

    code = "E-BUNDLE-EXISTS"


class BundleReadError(BundleError):
    """The bundle file could not be read."""

    code = "E-BUNDLE-READ"


class KeyMaterialError(CodedError):
    """A signing or public key could not be parsed, read or written."""

    code = "E-KEY"


class KeyFormatError(KeyMaterialError):
    """Not an `ed25519:<base64>` public key or an Ed25519 PKCS8 PEM private key."""

    code = "E-KEY-FORMAT"


class KeyFileError(KeyMaterialError):
    """A key file could not be read or written."""

    code = "E-KEY-FILE"


class KeyExists(KeyMaterialError):
    """Refusing to overwrite an existing key file without `--force`."""

    code = "E-KEY-EXISTS"


class SigningKeyNotTrusted(KeyMaterialError):
    """`apply` refused a signing key the Project's `spec.trustedSigningKeys` does not list."""

    code = "E-SIGNING-KEY-UNTRUSTED"
