"""The data key: wrapped with age for each recipient, split with Shamir for key groups."""

from __future__ import annotations

import os

import pyrage

from aivault_ops.sops import shamir
from aivault_ops.sops.block import AgeKey, SopsBlock
from aivault_ops.sops.errors import NoMatchingIdentity, SopsError
from aivault_ops.sops.identities import Identities

DATA_KEY_BYTES = 32


def new_data_key() -> bytes:
    """A fresh random 32-byte data key."""
    return os.urandom(DATA_KEY_BYTES)


def parse_recipient(recipient: str) -> object:
    """A pyrage recipient for an `age1…` or `ssh-ed25519`/`ssh-rsa` public key."""
    try:
        if recipient.startswith(("ssh-ed25519 ", "ssh-rsa ")):
            return pyrage.ssh.Recipient.from_str(recipient)
        return pyrage.x25519.Recipient.from_str(recipient)
    except Exception as error:  # pyrage raises its own untyped errors
        raise SopsError(f"invalid age recipient {recipient!r}") from error


def wrap(payload: bytes, recipient: str) -> AgeKey:
    """Encrypt the key (or a share) to one recipient as an armored age file."""
    armored = pyrage.encrypt(payload, [parse_recipient(recipient)], armored=True)
    return AgeKey(recipient, armored.decode("ascii"))


def wrap_groups(
    key: bytes, groups: tuple[tuple[str, ...], ...], threshold: int | None
) -> tuple[tuple[AgeKey, ...], ...]:
    """Wrap the key for every recipient; several groups get one Shamir share each."""
    if len(groups) == 1:
        return (tuple(wrap(key, recipient) for recipient in groups[0]),)
    shares = shamir.split(key, len(groups), threshold or len(groups))
    return tuple(
        tuple(wrap(share, recipient) for recipient in group)
        for share, group in zip(shares, groups, strict=True)
    )


def _open_group(group: tuple[AgeKey, ...], identities: Identities) -> bytes | None:
    for key in group:
        try:
            return bytes(pyrage.decrypt(key.enc.encode("ascii"), list(identities.keys)))
        except Exception:  # noqa: S112 - a non-matching key is expected; try the next
            continue
    return None


def unwrap(block: SopsBlock, identities: Identities, source: str) -> bytes:
    """Recover the data key with any matching identity; NoMatchingIdentity otherwise."""
    opened = [_open_group(group, identities) for group in block.groups]
    parts = [part for part in opened if part is not None]
    if len(block.groups) <= 1 or (len(parts) == 1 and len(parts[0]) == DATA_KEY_BYTES):
        if parts and len(parts[0]) == DATA_KEY_BYTES:
            return parts[0]
        raise NoMatchingIdentity(_no_match(block, identities, source))
    threshold = block.shamir_threshold or len(block.groups)
    if len(parts) < threshold:
        raise NoMatchingIdentity(
            f"{source}: only {len(parts)} of the {threshold} key groups required by the "
            f"Shamir threshold could be opened (identities from {_sources(identities)})"
        )
    try:
        return shamir.combine(parts[:threshold])
    except ValueError as error:
        raise NoMatchingIdentity(f"{source}: the Shamir key shares are invalid") from error


def _sources(identities: Identities) -> str:
    return ", ".join(identities.sources)


def _no_match(block: SopsBlock, identities: Identities, source: str) -> str:
    recipients = ", ".join(block.recipients()) or "none"
    return (
        f"{source}: no identity matches any recipient of the file ({recipients}); "
        f"identities tried from {_sources(identities)}"
    )
