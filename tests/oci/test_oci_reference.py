"""`oci://` references: what parses, what is refused, and that no password is echoed."""

from __future__ import annotations

import pytest

from aivault_ops.oci.errors import OciReferenceError
from aivault_ops.oci.reference import OciReference, is_oci, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci://ghcr.io/acme/policy", OciReference("ghcr.io", "acme/policy")),
        ("oci://ghcr.io/acme/policy:prod", OciReference("ghcr.io", "acme/policy", "prod")),
        ("oci://127.0.0.1:5000/p:latest", OciReference("127.0.0.1:5000", "p", "latest")),
        ("oci://[::1]:5000/a/b", OciReference("[::1]:5000", "a/b")),
        (f"oci://r.example/a@{DIGEST}", OciReference("r.example", "a", None, DIGEST)),
        ("oci://r.example/a@serial-4", OciReference("r.example", "a", "serial-4")),
        ("oci://localhost/a.b_c__d-e", OciReference("localhost", "a.b_c__d-e")),
    ],
    ids=["plain", "tag", "port", "ipv6", "digest", "at-tag", "separators"],
)
def test_references_parse(text: str, expected: OciReference) -> None:
    assert parse_reference(text) == expected
    assert is_oci(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ghcr.io/acme/policy", "expected oci://"),
        ("oci://ghcr.io", "expected oci://"),
        ("oci://ghcr.io/Acme/policy", "the repository is lowercase"),
        ("oci://ghcr.io/acme/policy:-bad", "a tag is up to 128"),
        ("oci://ghcr.io/acme@sha256:12", "a digest is sha256:"),
        ("oci://ghcr.io:99999/a", "the port must be 1-65535"),
        ("oci://ghcr.io/a/../b", "the repository is lowercase"),
    ],
    ids=["no-scheme", "no-repo", "uppercase", "bad-tag", "short-digest", "port", "dots"],
)
def test_bad_references_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(OciReferenceError, match=reason):
        parse_reference(text)


def test_credentials_in_a_reference_are_refused_and_never_echoed() -> None:
    with pytest.raises(OciReferenceError) as caught:
        parse_reference("oci://user:hunter2@ghcr.io/acme/policy")
    assert "hunter2" not in caught.value.diagnostics()
    assert "credentials do not belong in a reference" in caught.value.message


def test_loopback_is_recognised_for_plain_http() -> None:
    assert parse_reference("oci://127.0.0.1:5000/a").is_loopback
    assert parse_reference("oci://localhost/a").is_loopback
    assert parse_reference("oci://[::1]:5000/a").is_loopback
    assert not parse_reference("oci://10.0.0.1:5000/a").is_loopback
    assert not parse_reference("oci://ghcr.io/a").is_loopback


def test_display_forms() -> None:
    reference = parse_reference("oci://ghcr.io/acme/policy")
    assert str(reference) == "oci://ghcr.io/acme/policy"
    assert str(reference.with_tag("serial-3")) == "oci://ghcr.io/acme/policy:serial-3"
    assert str(parse_reference(f"oci://r/a@{DIGEST}")) == f"oci://r/a@{DIGEST}"
