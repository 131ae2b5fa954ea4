"""Loading one bundle: verification, the serial rule, decryption of what is needed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.bundles import SECRET_PATH, BundleFactory, make_factory

from aivault_ops.bundle import BundleRef, SigningKey
from aivault_ops.errors import AivaultError
from aivault_ops.runtime.bundles.loader import (
    BundleDirectory,
    Loader,
    RollbackRefused,
    check_serial,
    read_policy,
)
from aivault_ops.runtime.bundles.state import Floor
from aivault_ops.sops import load_identities


def loader(factory: BundleFactory, trusted: SigningKey | None = None) -> Loader:
    key = (trusted or factory.signing_key).public_key
    return Loader([key], load_identities(factory.identity, {}), lambda: datetime.now(UTC))


def ref(serial: int) -> BundleRef:
    return BundleRef(serial, f"bundle-{serial}.tar.gz")


@pytest.mark.parametrize(
    ("serial", "digest", "floor", "active", "message"),
    [
        (3, "a", None, 3, "serial 3 is not newer than the active serial 3"),
        (2, "a", None, 3, "serial 2 is not newer than the active serial 3"),
        (4, "a", Floor(5, "a"), None, "serial 4 is below the accepted serial 5"),
        (5, "b", Floor(5, "a"), None, "serial 5 differs from the bundle accepted with that serial"),
    ],
)
def test_rollbacks_are_refused(
    serial: int, digest: str, floor: Floor | None, active: int | None, message: str
) -> None:
    with pytest.raises(RollbackRefused) as caught:
        check_serial(serial, digest, floor, active)
    assert caught.value.diagnostics() == f"E-BUNDLE-ROLLBACK: {message}"


@pytest.mark.parametrize(
    ("serial", "floor", "active"),
    [(1, None, None), (5, Floor(5, "a"), None), (6, Floor(5, "b"), 5), (9, Floor(5, "x"), None)],
)
def test_newer_bundles_and_the_accepted_one_pass(
    serial: int, floor: Floor | None, active: int | None
) -> None:
    check_serial(serial, "a", floor, active)


def test_load_builds_the_policy_and_the_floor(factory: BundleFactory) -> None:
    data = factory.build(3)
    loaded = loader(factory).load(ref(3), data, floor=None, active=None)
    assert (loaded.policy.serial, loaded.policy.revision) == (3, "rev-3")
    assert loaded.policy.keyid == factory.signing_key.public_key.keyid
    assert loaded.floor == Floor(3, hashlib.sha256(data).hexdigest())


def test_only_the_needed_secrets_are_decrypted(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, {"MY_KEY": "needed-value", "UNUSED": "other-value"})
    from aivault_ops.bundle import verify_bundle

    verified = verify_bundle(
        factory.build(1), trusted_keys=[factory.signing_key.public_key], now=datetime.now(UTC)
    )
    secrets = loader(factory).decrypt_needed(verified, read_policy(verified))
    assert list(secrets) == [(SECRET_PATH, "MY_KEY")]
    assert secrets[(SECRET_PATH, "MY_KEY")].reveal_text() == "needed-value"


def test_a_secret_the_file_lacks_is_refused(tmp_path: Path) -> None:
    factory = make_factory(tmp_path, {"SOMETHING_ELSE": "x"})
    with pytest.raises(AivaultError) as caught:
        loader(factory).load(ref(1), factory.build(1), floor=None, active=None)
    assert caught.value.diagnostics() == (
        f"E-BUNDLE-SECRET-MISSING: {SECRET_PATH} has no secret named 'MY_KEY'"
    )


def test_a_policy_that_breaks_its_schema_is_refused(
    factory: BundleFactory,
) -> None:
    data = factory.build(1, methods=("get",))
    with pytest.raises(AivaultError) as caught:
        loader(factory).load(ref(1), data, floor=None, active=None)
    assert caught.value.diagnostics() == (
        "E-BUNDLE-POLICY: policy.json: capabilities.my-api/users.methods[0]: must be one of:"
        ' "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"'
    )


def test_the_loaded_policy_is_read_once_into_the_typed_document(factory: BundleFactory) -> None:
    from aivault_ops.bundle import verify_bundle

    verified = verify_bundle(
        factory.build(1), trusted_keys=[factory.signing_key.public_key], now=datetime.now(UTC)
    )
    document = read_policy(verified)
    assert document.to_json() == verified.policy
    assert document.capabilities["my-api/users"].methods == ("GET", "POST")


def test_a_bundle_named_for_another_serial_is_refused(factory: BundleFactory) -> None:
    with pytest.raises(AivaultError) as caught:
        loader(factory).load(ref(9), factory.build(2), floor=None, active=None)
    assert caught.value.diagnostics() == (
        "E-BUNDLE-SERIAL-NAME: the file is named for serial 9, holds 2"
    )


def test_an_untrusted_signer_is_refused(factory: BundleFactory) -> None:
    with pytest.raises(AivaultError) as caught:
        loader(factory, SigningKey.generate()).load(
            ref(1), factory.build(1), floor=None, active=None
        )
    assert caught.value.diagnostics().startswith("E-BUNDLE-UNTRUSTED: ")


def test_a_wrong_identity_cannot_decrypt(factory: BundleFactory, tmp_path: Path) -> None:
    other = make_factory(tmp_path)
    wrong = Loader(
        [factory.signing_key.public_key],
        load_identities(other.identity, {}),
        lambda: datetime.now(UTC),
    )
    with pytest.raises(AivaultError):
        wrong.load(ref(1), factory.build(1), floor=None, active=None)


def test_directory_lists_bundles_and_follows_symlinks(tmp_path: Path) -> None:
    (tmp_path / "bundle-2.tar.gz").write_bytes(b"2")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "b.tgz").write_bytes(b"10")
    (tmp_path / "bundle-10.tar.gz").symlink_to("real/b.tgz")
    (tmp_path / "bundle-11.tar.gz").symlink_to("missing")
    (tmp_path / "bundle-03.tar.gz").write_bytes(b"x")
    (tmp_path / ".tmp-bundle-4").write_bytes(b"x")
    (tmp_path / "bundle-5.tar.gz").mkdir()
    directory = BundleDirectory(tmp_path)
    assert directory.list() == [ref(2), ref(10)]
    assert directory.read(ref(10)) == b"10"


def test_fingerprint_changes_when_a_symlink_is_retargeted(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"same")
    link = tmp_path / "bundle-1.tar.gz"
    link.symlink_to("a")
    directory = BundleDirectory(tmp_path)
    before = directory.fingerprint()
    assert directory.fingerprint() == before
    link.unlink()
    link.symlink_to("b")
    assert directory.fingerprint() != before
