"""`Secret`: masked everywhere, revealed only on request, cheap to reveal."""

from __future__ import annotations

import pickle

import pytest

from aivault_ops.secret import Secret, wire_text

VALUE = "sk-live-0123456789"


def test_every_rendering_is_masked() -> None:
    secret = Secret(VALUE)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>40}", "%s" % (secret,)]  # noqa: UP031
    assert all(VALUE not in text for text in shown)
    assert repr(secret) == "Secret([secret])"
    assert repr((("authorization", secret),)) == "(('authorization', Secret([secret])),)"


def test_text_and_bytes_are_revealed_and_kept() -> None:
    text, data = Secret(VALUE), Secret(VALUE.encode())
    assert (text.reveal(), data.reveal()) == (VALUE, VALUE.encode())
    assert text.reveal_text() is text.reveal_text() == VALUE
    assert data.reveal_text() is data.reveal_text() == VALUE
    assert text.reveal_bytes() is text.reveal_bytes() == VALUE.encode()
    assert data.reveal_bytes() is data.reveal()


def test_equal_text_and_bytes_are_equal_and_hash_alike() -> None:
    assert Secret(VALUE) == Secret(VALUE.encode())
    assert hash(Secret(VALUE)) == hash(Secret(VALUE.encode()))
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE
    assert len({Secret(VALUE), Secret(VALUE.encode())}) == 1


def test_text_around_a_secret_gives_a_secret() -> None:
    bearer = "Bearer " + Secret(VALUE)
    path = Secret("/bot" + VALUE) + "/sendMessage"
    assert isinstance(bearer, Secret) and isinstance(path, Secret)
    assert (bearer.reveal_text(), path.reveal_text()) == (
        f"Bearer {VALUE}",
        f"/bot{VALUE}/sendMessage",
    )
    with pytest.raises(TypeError):
        Secret(VALUE) + b"bytes"  # type: ignore[operator]


def test_wire_text_reveals_a_secret_and_passes_text_through() -> None:
    assert wire_text(Secret(VALUE)) == VALUE
    plain = "application/json"
    assert wire_text(plain) is plain


def test_a_secret_cannot_be_changed_or_pickled() -> None:
    secret = Secret(VALUE)
    with pytest.raises(AttributeError, match="immutable"):
        secret._value = "other"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    assert not hasattr(secret, "__dict__")
