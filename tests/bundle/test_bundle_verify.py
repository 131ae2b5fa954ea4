"""verify_bundle: the happy path and every way a bundle is refused."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aivault_ops.bundle import BundleError, Limits, SigningKey, VerifiedBundle, verify_bundle
from aivault_ops.bundle.errors import MissingEntry
from aivault_ops.bundle.manifest import format_time
from aivault_ops.bundle.signatures import Signature, encode_signatures, sign_manifest
from aivault_ops.canonical_json import canonical_json
from aivault_ops.errors import AivaultError

Verify = Callable[..., VerifiedBundle]


def refused(verify: Verify, data: bytes, **options: Any) -> tuple[str, str]:
    with pytest.raises(BundleError) as info:
        verify(data, **options)
    return info.value.code, info.value.message


def test_valid_bundle_returns_only_verified_content(forge: Any, verify: Verify) -> None:
    verified = verify(forge.valid())
    assert verified.manifest.serial == 7
    assert verified.manifest.revision == "0123abc"
    assert verified.manifest.environment == "prod"
    assert verified.manifest.expires_at is None
    assert verified.policy_bytes == forge.POLICY
    assert verified.policy == {"consumers": {}, "credentials": {"openai": {"provider": "openai"}}}
    assert dict(verified.files) == forge.SECRETS
    assert verified.keyid == forge.key.public_key.keyid
    with pytest.raises(TypeError):
        verified.files["secrets/new"] = b"x"  # type: ignore[index]


def test_no_secret_files_and_null_environment(forge: Any, verify: Verify) -> None:
    verified = verify(forge.valid(secret_files={}, environment=None))
    assert dict(verified.files) == {}
    assert verified.manifest.environment is None


def test_one_trusted_signature_among_untrusted_ones_is_enough(
    forge: Any, verify: Verify, other_key: SigningKey
) -> None:
    entries = forge.signed(forge.manifest())
    manifest = entries["manifest.json"]
    both = [sign_manifest(manifest, other_key), sign_manifest(manifest, forge.key)]
    entries["signatures.json"] = encode_signatures(both)
    assert verify(forge.pack(entries)).keyid == forge.key.public_key.keyid


def test_modified_policy_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["policy.json"] = b'{"consumers":{"evil":{}}}'
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-DIGEST",
        f"'policy.json': sha256 {forge.sha(entries['policy.json'])}"
        f" but manifest.json says {forge.sha(forge.POLICY)}",
    )


def test_modified_secret_file_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["secrets/openai.sops.yaml"] += b"# appended\n"
    code, message = refused(verify, forge.pack(entries))
    assert code == "E-BUNDLE-DIGEST"
    assert message.startswith("'secrets/openai.sops.yaml': sha256 ")


def test_extra_entry_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["secrets/extra.sops.yaml"] = b"x: y\n"
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-UNLISTED",
        "'secrets/extra.sops.yaml' is not listed in manifest.json",
    )


def test_missing_listed_entry_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    del entries["secrets/stripe.sops.json"]
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-MISSING",
        "'secrets/stripe.sops.json' is listed in manifest.json but not in the bundle",
    )


def test_missing_manifest_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    del entries["manifest.json"]
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-MISSING",
        "the bundle has no manifest.json",
    )


def test_missing_signatures_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    del entries["signatures.json"]
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-UNSIGNED",
        "the bundle has no signatures.json",
    )


def test_empty_signature_list_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["signatures.json"] = b"[]"
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-UNSIGNED",
        "signatures.json holds no signatures; the bundle is unsigned",
    )


def test_manifest_changed_after_signing_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["manifest.json"] = entries["manifest.json"].replace(b'"serial":7', b'"serial":8')
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-SIGNATURE",
        f"the signature by key {forge.key.public_key.keyid} does not match manifest.json"
        " (the bundle was altered or signed with another key)",
    )


def test_signature_swapped_from_another_bundle_is_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    entries["signatures.json"] = forge.entries_of(forge.valid(serial=8))["signatures.json"]
    code, _ = refused(verify, forge.pack(entries))
    assert code == "E-BUNDLE-SIGNATURE"


def test_bundle_by_untrusted_key_is_refused(
    forge: Any, verify: Verify, other_key: SigningKey
) -> None:
    bundle = forge.valid(signing_key=other_key)
    assert refused(verify, bundle) == (
        "E-BUNDLE-UNTRUSTED",
        f"signed only by untrusted key(s) {other_key.public_key.keyid}",
    )


def test_no_trusted_keys_refuses_everything(forge: Any) -> None:
    with pytest.raises(BundleError) as info:
        verify_bundle(forge.valid(), trusted_keys=[], now=forge.NOW)
    assert info.value.code == "E-BUNDLE-UNTRUSTED"


def test_untrusted_key_claiming_trusted_keyid_is_refused(
    forge: Any, verify: Verify, other_key: SigningKey
) -> None:
    entries = forge.signed(forge.manifest())
    forged = sign_manifest(entries["manifest.json"], other_key)
    entries["signatures.json"] = canonical_json(
        [{**forged.to_json(), "keyid": forge.key.public_key.keyid}]
    )
    code, _ = refused(verify, forge.pack(entries))
    assert code == "E-BUNDLE-SIGNATURE"


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        (
            b"{",
            "signatures.json: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (b'{"keyid": "x"}', "signatures.json: (top level): {'keyid': 'x'} is not of type 'array'"),
        (b'[{"keyid": "abc", "alg": "ed25519", "sig": ""}]', None),
        (b'[{"keyid": "0123456789abcdef", "alg": "rsa", "sig": ""}]', None),
        (
            b'[{"keyid": "0123456789abcdef", "alg": "ed25519", "sig": "' + b"A" * 86 + b'==\\n"}]',
            "signatures.json: a signature is not valid base64",
        ),
    ],
)
def test_malformed_signatures_are_refused(
    forge: Any, verify: Verify, signatures: bytes, message: str | None
) -> None:
    entries = forge.entries_of(forge.valid())
    entries["signatures.json"] = signatures
    code, text = refused(verify, forge.pack(entries))
    assert code == ("E-BUNDLE-JSON" if signatures == b"{" else "E-BUNDLE-SIGNATURES")
    if message is not None:
        assert text == message


def test_expired_bundle_is_refused(forge: Any, verify: Verify) -> None:
    bundle = forge.valid(expires_at=forge.NOW - timedelta(seconds=1))
    assert refused(verify, bundle) == (
        "E-BUNDLE-EXPIRED",
        "expired at 2026-06-01T11:59:59Z (now 2026-06-01T12:00:00Z)",
    )


def test_bundle_expiring_exactly_now_is_refused(forge: Any, verify: Verify) -> None:
    code, _ = refused(verify, forge.valid(expires_at=forge.NOW))
    assert code == "E-BUNDLE-EXPIRED"


def test_bundle_before_expiry_is_accepted(forge: Any, verify: Verify) -> None:
    expiry = forge.NOW + timedelta(seconds=1)
    assert verify(forge.valid(expires_at=expiry)).manifest.expires_at == expiry


def test_naive_now_is_a_programming_error(forge: Any, signing_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_bundle(
            forge.valid(), trusted_keys=[signing_key.public_key], now=datetime(2026, 1, 1)
        )


def test_unknown_format_is_refused(forge: Any, verify: Verify) -> None:
    manifest = forge.manifest(format="aivault-ops/bundle@2")
    assert refused(verify, forge.pack(forge.signed(manifest))) == (
        "E-BUNDLE-FORMAT",
        "manifest.json: unknown bundle format 'aivault-ops/bundle@2'"
        " (this version reads 'aivault-ops/bundle@1')",
    )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b'{"serial": 1', "manifest.json: Expecting ',' delimiter at line 1 column 13"),
        (b"\xff{}", "manifest.json: not UTF-8: invalid start byte at byte 0"),
        (b'{"serial": 1, "serial": 2}', "manifest.json: duplicate key 'serial'"),
        (b'{"serial": NaN}', "manifest.json: NaN is not JSON"),
    ],
)
def test_malformed_manifest_json_is_refused(
    forge: Any, verify: Verify, manifest: bytes, message: str
) -> None:
    assert refused(verify, forge.pack(forge.signed(manifest))) == ("E-BUNDLE-JSON", message)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"serial": "7"}, "manifest.json: serial: '7' is not of type 'integer'"),
        ({"serial": True}, "manifest.json: serial: True is not of type 'integer'"),
        ({"serial": -1}, "manifest.json: serial: -1 is less than the minimum of 0"),
        ({"revision": 3}, "manifest.json: revision: 3 is not of type 'string'"),
        ({"revision": "abc\n"}, "manifest.json: bad revision"),
        ({"environment": 1}, "manifest.json: environment: 1 is not of type 'string', 'null'"),
        (
            {"environment": "a b"},
            "manifest.json: environment: 'a b' does not match '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'",
        ),
        ({"environment": "prod\n"}, "manifest.json: bad environment name"),
        (
            {"expiresAt": "tomorrow"},
            "manifest.json: expiresAt: 'tomorrow' does not match"
            " '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'",
        ),
        (
            {"expiresAt": "2026-13-01T00:00:00Z"},
            "manifest.json: expiresAt: '2026-13-01T00:00:00Z' is not a valid time",
        ),
        ({"files": []}, "manifest.json: files: [] is not of type 'object'"),
        (
            {"files": {"secrets/a": "abc"}},
            "manifest.json: files: 'policy.json' is a required property",
        ),
        (
            {"files": {"policy.json": "A" * 64}},
            "manifest.json: files.policy.json: '" + "A" * 64 + "' does not match '^[0-9a-f]{64}$'",
        ),
        (
            {"files": {"policy.json": "a" * 64, "manifest.json": "a" * 64}},
            "manifest.json: files: 'manifest.json' does not match"
            " '^(policy\\\\.json|secrets/[A-Za-z0-9_.@+-]+(/[A-Za-z0-9_.@+-]+)*)$'",
        ),
        (
            {"unexpected": 1},
            "manifest.json: (top level): Additional properties are not allowed"
            " ('unexpected' was unexpected)",
        ),
    ],
)
def test_wrong_manifest_fields_are_refused(
    forge: Any, verify: Verify, fields: dict[str, Any], message: str | None
) -> None:
    code, text = refused(verify, forge.pack(forge.signed(forge.manifest(**fields))))
    assert code == "E-BUNDLE-MANIFEST"
    if message is not None:
        assert text == message


def test_manifest_missing_a_field_is_refused(forge: Any, verify: Verify) -> None:
    manifest = forge.manifest()
    del manifest["revision"]
    assert refused(verify, forge.pack(forge.signed(manifest))) == (
        "E-BUNDLE-MANIFEST",
        "manifest.json: (top level): 'revision' is a required property",
    )


def test_policy_that_is_not_json_is_refused(forge: Any, verify: Verify) -> None:
    payload = {"policy.json": b"{nope"}
    entries = forge.signed(forge.manifest(payload), payload)
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-JSON",
        "policy.json: Expecting property name enclosed in double quotes at line 1 column 2",
    )


def test_policy_that_is_not_an_object_is_refused(forge: Any, verify: Verify) -> None:
    payload = {"policy.json": b"[]"}
    entries = forge.signed(forge.manifest(payload), payload)
    assert refused(verify, forge.pack(entries)) == (
        "E-BUNDLE-POLICY",
        "policy.json must hold a JSON object",
    )


def test_policy_validator_sees_the_policy_and_can_refuse_it(forge: Any, verify: Verify) -> None:
    seen: list[Mapping[str, Any]] = []

    def validator(policy: Mapping[str, Any]) -> None:
        seen.append(policy)
        raise AivaultError("credentials.openai: unknown provider", hint="fix the compiler")

    with pytest.raises(BundleError) as info:
        verify(forge.valid(), policy_validator=validator)
    assert info.value.code == "E-BUNDLE-POLICY"
    assert info.value.diagnostics() == (
        "E-BUNDLE-POLICY: policy.json: credentials.openai: unknown provider\n"
        "  hint: fix the compiler"
    )
    assert seen == [{"consumers": {}, "credentials": {"openai": {"provider": "openai"}}}]


def test_policy_validator_that_accepts_lets_the_bundle_through(forge: Any, verify: Verify) -> None:
    assert verify(forge.valid(), policy_validator=lambda policy: None).manifest.serial == 7


@pytest.mark.parametrize(
    ("kind", "link", "description"),
    [
        (tarfile.SYMTYPE, "/etc/passwd", "symbolic link"),
        (tarfile.LNKTYPE, "policy.json", "hard link"),
        (tarfile.CHRTYPE, "", "character device"),
        (tarfile.BLKTYPE, "", "block device"),
        (tarfile.FIFOTYPE, "", "fifo"),
        (tarfile.DIRTYPE, "", "directory"),
    ],
)
def test_members_that_are_not_regular_files_are_refused(
    forge: Any, verify: Verify, kind: bytes, link: str, description: str
) -> None:
    entries = forge.entries_of(forge.valid())
    members = [forge.member(name, data) for name, data in sorted(entries.items())]
    members.append(forge.member("secrets/odd", kind=kind, link=link))
    assert refused(verify, forge.tar_gz(members)) == (
        "E-BUNDLE-MEMBER-TYPE",
        f"'secrets/odd' is a {description}; only regular files are allowed",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("/etc/passwd", "'/etc/passwd': absolute paths are not allowed in a bundle"),
        ("../x", "'../x': '..' is not allowed in a bundle path"),
        ("secrets/../../x", "'secrets/../../x': '..' is not allowed in a bundle path"),
        (
            "./policy.json",
            "'./policy.json': a bundle holds only manifest.json, signatures.json,"
            " policy.json and secrets/…",
        ),
        (
            "secrets//a",
            "'secrets//a': path segments must be non-empty, not '.', and use only"
            " letters, digits and _.@+-",
        ),
        ("secrets/./a", None),
        ("secrets/a\\..\\b", None),
        ("secrets/a\x1b[2J", None),
        ("secrets/caf\u00e9", None),
        ("other.txt", None),
        ("secrets/" + "a" * 250, None),
    ],
)
def test_unsafe_entry_paths_are_refused(
    forge: Any, verify: Verify, name: str, message: str | None
) -> None:
    entries = forge.entries_of(forge.valid())
    members = [forge.member(path, data) for path, data in sorted(entries.items())]
    members.append(forge.member(name, b"x"))
    code, text = refused(verify, forge.tar_gz(members))
    assert code == "E-BUNDLE-PATH"
    if message is not None:
        assert text == message


def test_duplicate_entries_are_refused(forge: Any, verify: Verify) -> None:
    entries = forge.entries_of(forge.valid())
    members = [forge.member(path, data) for path, data in sorted(entries.items())]
    members.append(forge.member("policy.json", b"{}"))
    assert refused(verify, forge.tar_gz(members)) == (
        "E-BUNDLE-DUPLICATE",
        "'policy.json' appears more than once",
    )


def _zeros_gzip(total: int) -> bytes:
    header, _ = tarfile.TarInfo("policy.json"), None
    header.size = total
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header.tobuf(format=tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    parts += [compressor.compress(chunk) for _ in range(total >> 20)]
    return b"".join([*parts, compressor.flush()])


def test_gzip_bomb_is_refused(forge: Any, verify: Verify) -> None:
    bomb = _zeros_gzip(200 << 20)
    assert len(bomb) < 300_000
    assert refused(verify, bomb) == (
        "E-BUNDLE-TOO-LARGE",
        "decompresses to more than 67108864 bytes",
    )


def test_size_limit_is_configurable(forge: Any, verify: Verify) -> None:
    code, message = refused(verify, forge.valid(), limits=Limits(max_uncompressed_bytes=4096))
    assert (code, message) == ("E-BUNDLE-TOO-LARGE", "decompresses to more than 4096 bytes")


def test_member_count_is_capped(forge: Any, verify: Verify) -> None:
    code, message = refused(verify, forge.valid(), limits=Limits(max_members=4))
    assert (code, message) == ("E-BUNDLE-TOO-LARGE", "more than 4 entries")


@pytest.mark.parametrize("keep", [0.5, 0.9, 10 / 1000])
def test_truncated_bundle_is_refused(forge: Any, verify: Verify, keep: float) -> None:
    bundle = forge.valid()
    code, _ = refused(verify, bundle[: max(1, int(len(bundle) * keep))])
    assert code == "E-BUNDLE-ARCHIVE"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"this is not a bundle at all", "not a gzip file, or corrupt (incorrect header check)"),
        (b"\x1f\x8b", "truncated: the gzip stream ends early"),
    ],
)
def test_garbage_is_refused(verify: Verify, data: bytes, message: str) -> None:
    assert refused(verify, data) == ("E-BUNDLE-ARCHIVE", message)


def test_gzip_of_something_that_is_not_a_tar_is_refused(verify: Verify) -> None:
    code, message = refused(verify, zlib.compress(b"plain text, no tar" * 40, wbits=31))
    assert code == "E-BUNDLE-ARCHIVE"
    assert message.startswith("not a valid tar archive inside the gzip stream: ")


@pytest.mark.parametrize("cut", [700, 1100, 2600])
def test_truncated_tar_inside_complete_gzip_is_refused(
    forge: Any, verify: Verify, cut: int
) -> None:
    tar_bytes = zlib.decompress(forge.valid(), wbits=31)
    with pytest.raises(BundleError):
        verify(zlib.compress(tar_bytes[:cut], wbits=31))


def test_empty_tar_is_refused(forge: Any, verify: Verify) -> None:
    assert refused(verify, forge.tar_gz([])) == ("E-BUNDLE-ARCHIVE", "the archive is empty")


def test_trailing_data_after_gzip_stream_is_refused(forge: Any, verify: Verify) -> None:
    assert refused(verify, forge.valid() + b"extra") == (
        "E-BUNDLE-ARCHIVE",
        "unexpected data after the end of the gzip stream",
    )


def test_verified_bundle_is_frozen(forge: Any, verify: Verify) -> None:
    verified = verify(forge.valid())
    with pytest.raises(AttributeError):
        verified.keyid = "x"  # type: ignore[misc]
    assert verified.manifest.expires_at is None or verified.manifest.expires_at.tzinfo is UTC


def test_bundle_errors_from_the_policy_validator_keep_their_code(
    forge: Any, verify: Verify
) -> None:
    def validator(policy: Mapping[str, Any]) -> None:
        raise MissingEntry("secrets/x.sops.yaml is used by the policy but not in the bundle")

    with pytest.raises(MissingEntry):
        verify(forge.valid(), policy_validator=validator)


@pytest.mark.parametrize(
    ("keyid", "alg", "sig"),
    [
        ("0123456789abcdeF", "ed25519", bytes(64)),
        ("0123456789abcdef", "rsa", bytes(64)),
        ("0123456789abcdef", "ed25519", bytes(63)),
    ],
)
def test_signature_objects_recheck_their_invariants(keyid: str, alg: str, sig: bytes) -> None:
    with pytest.raises(BundleError) as info:
        Signature(keyid=keyid, alg=alg, sig=sig)
    assert info.value.code == "E-BUNDLE-SIGNATURES"


def test_format_time_needs_an_aware_datetime() -> None:
    assert format_time(datetime(2030, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))) == (
        "2030-01-01T00:00:00Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2030, 1, 1))
