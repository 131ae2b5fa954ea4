"""`read_target`: which published bundle a plan compares against, and what it passes over."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.bundles import SECRET_PATH, policy

from aivault_ops.bundle import SigningKey, build_bundle, publish_bundle
from aivault_ops.bundle.source import MAX_BUNDLE_BYTES
from aivault_ops.canonical_json import canonical_json
from aivault_ops.errors import AivaultError
from aivault_ops.published_bundles import MAX_CHECKED, TargetState, read_target

SECRET = b"sops file bytes\n"
KEY, OTHER = SigningKey.generate(), SigningKey.generate()


def publish(
    target: Path, serial: int, key: SigningKey = KEY, policy_json: bytes | None = None
) -> Path:
    data = build_bundle(
        policy_json=policy_json
        or canonical_json(policy(secret_file=SECRET, host=f"h{serial}.example.com")),
        secret_files={SECRET_PATH: SECRET},
        serial=serial,
        revision=f"rev-{serial}",
        environment="test",
        expires_at=None,
        signing_key=key,
    )
    return publish_bundle(target, data, serial)


def test_a_missing_or_empty_target_has_nothing_published(tmp_path: Path) -> None:
    assert read_target(tmp_path / "missing", [KEY.public_key]) == TargetState(None, 0)
    assert read_target(tmp_path, [KEY.public_key]) == TargetState(None, 0)
    assert TargetState(None, 0).next_serial == 1


def test_the_newest_bundle_that_verifies_is_the_base(tmp_path: Path) -> None:
    publish(tmp_path, 1)
    publish(tmp_path, 2)
    state = read_target(tmp_path, [KEY.public_key])
    assert state.base is not None and state.unverifiable == ()
    assert (state.base.path, state.base.serial, state.base.revision) == (
        tmp_path / "bundle-2.tar.gz", 2, "rev-2",
    )  # fmt: skip
    assert state.base.policy["providers"]["my-api"]["hosts"] == ["h2.example.com"]
    assert state.base.describe() == {
        "bundle": "bundle-2.tar.gz", "serial": 2, "revision": "rev-2", "verified": True,
    }  # fmt: skip
    assert state.next_serial == 3


def test_newer_bundles_that_do_not_verify_are_passed_over_with_the_reason(tmp_path: Path) -> None:
    publish(tmp_path, 1)
    publish(tmp_path, 2, key=OTHER)
    (tmp_path / "bundle-3.tar.gz").write_bytes(b"not a bundle")
    with (tmp_path / "bundle-4.tar.gz").open("wb") as huge:
        huge.truncate(MAX_BUNDLE_BYTES + 1)  # sparse; its read is refused, nothing unpacked
    state = read_target(tmp_path, [KEY.public_key])
    assert state.base is not None and state.base.serial == 1
    assert state.newest_serial == 4
    reasons = {path.name: reason.split(":")[0] for path, reason in state.unverifiable}
    assert reasons == {
        "bundle-4.tar.gz": "E-BUNDLE-TOO-LARGE",
        "bundle-3.tar.gz": "E-BUNDLE-ARCHIVE",
        "bundle-2.tar.gz": "E-BUNDLE-UNTRUSTED",
    }
    assert [path.name for path, _ in state.unverifiable] == [
        "bundle-4.tar.gz", "bundle-3.tar.gz", "bundle-2.tar.gz",
    ]  # fmt: skip


def test_only_the_newest_bundles_are_tried(tmp_path: Path) -> None:
    publish(tmp_path, 1)
    for serial in range(2, MAX_CHECKED + 2):
        publish(tmp_path, serial, key=OTHER)
    state = read_target(tmp_path, [KEY.public_key])
    assert state.base is None
    assert len(state.unverifiable) == MAX_CHECKED
    assert state.next_serial == MAX_CHECKED + 2


def test_without_keys_the_newest_bundle_is_read_unverified(tmp_path: Path) -> None:
    publish(tmp_path, 1)
    publish(tmp_path, 2, key=OTHER)
    state = read_target(tmp_path, [])
    assert state.base is not None
    assert (state.base.serial, state.base.revision) == (2, "rev-2")
    assert state.base.unverified_reason is not None
    assert state.base.unverified_reason.startswith("E-BUNDLE-UNTRUSTED: ")
    assert state.base.describe()["verified"] is False
    assert state.base.policy["providers"]["my-api"]["hosts"] == ["h2.example.com"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a bundle", "the newest bundle cannot be read"),
        (None, "policy.json is not an object"),
    ],
    ids=["not-an-archive", "policy-not-an-object"],
)
def test_without_keys_an_unreadable_newest_bundle_is_an_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = publish(tmp_path, 1, policy_json=b"[]")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AivaultError, match=message) as caught:
        read_target(tmp_path, [])
    assert caught.value.message.startswith(f"{path}: ")
