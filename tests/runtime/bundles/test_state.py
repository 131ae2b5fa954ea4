"""The state dir, the persisted serial floor, and the swap of the active policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.bundles import SECRET_PATH, policy

from aivault_ops.errors import AivaultError
from aivault_ops.policy_document import PolicyDocument
from aivault_ops.runtime.bundles.state import (
    Floor,
    RuntimeState,
    SerialFloor,
    default_state_dir,
    prepare_state_dir,
)
from aivault_ops.runtime.policy.active import ActivePolicy
from aivault_ops.secret import Secret

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def active(serial: int) -> ActivePolicy:
    return ActivePolicy.build(
        manifest={"serial": serial, "revision": f"r{serial}", "environment": "test"},
        policy=PolicyDocument.from_json(policy()),
        keyid="0123456789abcdef",
        secrets={(SECRET_PATH, "MY_KEY"): Secret("value")},
    )


def test_default_state_dir_follows_xdg() -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/x", "HOME": "/h"}) == Path("/x/aivault-ops")
    assert default_state_dir({"HOME": "/h"}) == Path("/h/.local/state/aivault-ops")


def test_prepare_state_dir_creates_a_private_dir(tmp_path: Path) -> None:
    path = prepare_state_dir(tmp_path / "a" / "state")
    assert path.stat().st_mode & 0o777 == 0o700


def test_prepare_state_dir_refuses_a_dir_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(AivaultError) as caught:
        prepare_state_dir(shared)
    assert caught.value.message == f"{shared}: the state dir is writable by others"


def test_floor_round_trip_and_absence(tmp_path: Path) -> None:
    floor = SerialFloor(tmp_path)
    assert floor.read() is None
    floor.write(Floor(7, "ab" * 32))
    assert SerialFloor(tmp_path).read() == Floor(7, "ab" * 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".serial-floor.lock", "serial-floor.json"]


def test_the_floor_never_goes_down(tmp_path: Path) -> None:
    floor = SerialFloor(tmp_path)
    floor.write(Floor(9, "a" * 64))
    floor.write(Floor(8, "b" * 64))
    assert floor.read() == Floor(9, "a" * 64)
    floor.write(Floor(10, "c" * 64))
    assert floor.read() == Floor(10, "c" * 64)


@pytest.mark.parametrize(
    "content", [b"", b"{", b'{"serial": "7", "sha256": "x"}', b'{"serial": -1, "sha256": "x"}']
)
def test_a_corrupt_floor_fails_closed(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "serial-floor.json").write_bytes(content)
    with pytest.raises(AivaultError) as caught:
        SerialFloor(tmp_path).read()
    assert caught.value.message == f"{tmp_path / 'serial-floor.json'}: unreadable serial floor"


def test_runtime_state_swaps_whole_records() -> None:
    state = RuntimeState()
    first = active(1)
    state.activated(first, NOW)
    before = state.record
    state.failed("bundle-2.tar.gz: E-BUNDLE-DIGEST: bad", NOW)
    assert before.policy is first and before.last_error is None
    assert state.record.policy is first
    assert state.record.last_error == "bundle-2.tar.gz: E-BUNDLE-DIGEST: bad"
    assert state.record.loaded_at == NOW
    second = active(2)
    state.activated(second, NOW)
    assert state.record.policy is second and state.record.last_error is None


def test_status_document_states() -> None:
    from aivault_ops.runtime.bundles.state import LoadRecord
    from aivault_ops.runtime.observe.audit import HEALTHY
    from aivault_ops.runtime.observe.status import status_document

    empty = status_document(LoadRecord(last_error="bundle-1.tar.gz: E-X: y"), NOW, HEALTHY)
    assert (empty["state"], empty["serial"], empty["counts"]) == ("not_ready", None, {})
    assert empty["lastError"] == "bundle-1.tar.gz: E-X: y"
    built = ActivePolicy.build(
        manifest={
            "serial": 4,
            "revision": "r4",
            "environment": "e",
            "expiresAt": "2026-06-01T12:00:00Z",
        },
        policy=PolicyDocument.from_json(policy()),
        keyid="0123456789abcdef",
        secrets={(SECRET_PATH, "MY_KEY"): Secret("value")},
    )
    record = LoadRecord(built, NOW, NOW, None)
    before = status_document(record, NOW.replace(hour=11), HEALTHY)
    assert (before["state"], before["expiresAt"], before["loadedAt"]) == (
        "ready",
        "2026-06-01T12:00:00.000Z",
        "2026-06-01T12:00:00.000Z",
    )
    assert status_document(record, NOW, HEALTHY)["state"] == "degraded"
    assert before["problems"] == [
        "credential 'my-api': E-CREDENTIAL-UNAVAILABLE: secret variable 'secret' is shorter"
        " than 8 characters and cannot be redacted reliably from responses"
    ]
