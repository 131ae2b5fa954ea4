"""build_bundle: deterministic bytes, exact tar and gzip headers, path checks."""

from __future__ import annotations

import base64
import gzip
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.bundle import BundleError, SigningKey, save_signing_key
from aivault_ops.canonical_json import loads_strict

_BUILD_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import datetime, UTC
    from pathlib import Path
    from aivault_ops.bundle import build_bundle, load_signing_key

    secrets = {f"secrets/s{i}.sops.yaml": f"value {i}\\n".encode() for i in range(20)}
    if sys.argv[3] == "reversed":
        secrets = dict(reversed(list(secrets.items())))
    data = build_bundle(
        policy_json=b'{"p":1}',
        secret_files=secrets,
        serial=42,
        revision="deadbeef",
        environment="staging",
        expires_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        signing_key=load_signing_key(Path(sys.argv[1])),
    )
    Path(sys.argv[2]).write_bytes(data)
    """
)


def _build_in_subprocess(tmp_path: Path, key_file: Path, name: str, order: str, seed: str) -> bytes:
    out = tmp_path / name
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(key_file), str(out), order], check=True, env=env
    )
    return out.read_bytes()


def test_two_processes_build_byte_identical_bundles(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    key_file = tmp_path / "signing.pem"
    save_signing_key(signing_key, key_file)
    first = _build_in_subprocess(tmp_path, key_file, "a.tar.gz", "forward", "1")
    second = _build_in_subprocess(tmp_path, key_file, "b.tar.gz", "reversed", "2")
    assert first == second
    different_key = tmp_path / "other.pem"
    save_signing_key(SigningKey.generate(), different_key)
    assert _build_in_subprocess(tmp_path, different_key, "c.tar.gz", "forward", "1") != first


def test_secret_insertion_order_does_not_matter(forge: Any) -> None:
    reordered = dict(reversed(list(forge.SECRETS.items())))
    assert forge.valid() == forge.valid(secret_files=reordered)


@pytest.mark.parametrize(
    "change",
    [
        {"serial": 8},
        {"revision": "other"},
        {"environment": "staging"},
        {"environment": None},
        {"policy_json": b"{}"},
        {"expires_at": datetime(2030, 1, 1, tzinfo=UTC)},
    ],
)
def test_every_input_changes_the_bytes(forge: Any, change: dict[str, Any]) -> None:
    assert forge.valid(**change) != forge.valid()


def test_gzip_header_has_no_name_and_mtime_zero(forge: Any) -> None:
    bundle = forge.valid()
    assert bundle[:4] == b"\x1f\x8b\x08\x00"  # magic, deflate, flags: no FNAME/FEXTRA/FCOMMENT
    assert bundle[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert bundle[8:10] == b"\x00\xff"  # XFL 0: the default level (6), not 9 or 1; OS unknown


def test_tar_entries_are_sorted_and_normalised(forge: Any) -> None:
    tar_bytes = gzip.decompress(forge.valid())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as archive:
        members = archive.getmembers()
        headers = {
            (m.type, m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname, m.pax_headers == {})
            for m in members
        }
    assert [m.name for m in members] == [
        "manifest.json",
        "policy.json",
        "secrets/openai.sops.yaml",
        "secrets/stripe.sops.json",
        "signatures.json",
    ]
    assert headers == {(tarfile.REGTYPE, 0o644, 0, 0, 0, "", "", True)}
    assert tar_bytes[257:263] == b"ustar\x00"  # POSIX (PAX-compatible) headers


def test_manifest_lists_digests_and_is_canonical(forge: Any) -> None:
    entries = forge.entries_of(forge.valid(expires_at=datetime(2030, 1, 2, 3, 4, 5, 999, UTC)))
    manifest = entries["manifest.json"]
    assert loads_strict(manifest) == {
        "format": "aivault-ops/bundle@1",
        "serial": 7,
        "revision": "0123abc",
        "environment": "prod",
        "expiresAt": "2030-01-02T03:04:05Z",
        "files": {path: forge.sha(entries[path]) for path in ["policy.json", *forge.SECRETS]},
    }
    assert manifest.startswith(b'{"environment":"prod","expiresAt":"2030-01-02T03:04:05Z",')
    assert entries["policy.json"] == forge.POLICY
    assert {path: entries[path] for path in forge.SECRETS} == forge.SECRETS


def test_expiry_in_another_zone_is_written_in_utc(forge: Any) -> None:
    zone = timezone(timedelta(hours=2))
    entries = forge.entries_of(forge.valid(expires_at=datetime(2030, 1, 1, 2, 0, tzinfo=zone)))
    assert b'"expiresAt":"2030-01-01T00:00:00Z"' in entries["manifest.json"]


def test_signature_is_over_the_exact_manifest_bytes(forge: Any) -> None:
    entries = forge.entries_of(forge.valid())
    [signature] = loads_strict(entries["signatures.json"])
    assert signature["keyid"] == forge.key.public_key.keyid
    assert signature["alg"] == "ed25519"
    assert forge.key.public_key.verify(base64.b64decode(signature["sig"]), entries["manifest.json"])


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("policy.json", "E-BUNDLE-PATH"),
        ("openai.sops.yaml", "E-BUNDLE-PATH"),
        ("/secrets/a", "E-BUNDLE-PATH"),
        ("secrets/../a", "E-BUNDLE-PATH"),
        ("secrets/", "E-BUNDLE-PATH"),
        ("secrets/a b", "E-BUNDLE-PATH"),
    ],
)
def test_bad_secret_paths_are_refused_before_signing(forge: Any, path: str, code: str) -> None:
    with pytest.raises(BundleError) as info:
        forge.valid(secret_files={path: b"x"})
    assert info.value.code == code


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serial": -1}, "manifest.json: bad serial"),
        ({"serial": True}, "manifest.json: bad serial"),
        ({"serial": 2**63}, "manifest.json: bad serial"),
        ({"revision": ""}, "manifest.json: bad revision"),
        ({"revision": "a\x1b[31m"}, "manifest.json: bad revision"),
        ({"environment": "../prod"}, "manifest.json: bad environment name"),
        ({"expires_at": datetime(2030, 1, 1)}, "manifest.json: expiresAt must be timezone-aware"),
    ],
)
def test_bad_manifest_values_are_refused_before_signing(
    forge: Any, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(BundleError) as info:
        forge.valid(**change)
    assert (info.value.code, info.value.message) == ("E-BUNDLE-MANIFEST", message)
