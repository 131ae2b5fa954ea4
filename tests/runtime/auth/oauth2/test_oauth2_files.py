"""Files under `<state-dir>/oauth2/`: never followed, never waited on, never world-usable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyrage
import pytest

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.oauth2.cache import AccessToken, TokenFile
from aivault_ops.runtime.auth.oauth2.flow import OAuth2Config, OAuth2Secret, TokenManager
from aivault_ops.secret import Secret

HOSTS = ("auth.example.com",)
SECRET = json.dumps({"client_id": "c", "client_secret": "client-secret-0123"})
NOT_REGULAR = "is not a regular file owned by the runtime's user"


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging) when the block blocks longer than `seconds`."""

    def expired(*_: Any) -> None:
        raise AssertionError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cache(tmp_path: Path) -> TokenFile:
    return TokenFile.for_credential(tmp_path, "crm", pyrage.x25519.Identity.generate())


def token() -> AccessToken:
    return AccessToken(Secret("access-token-1"), 10.0, 5.0, Secret("rt-rotated-0123456789"))


def refused(call: Any) -> str:
    with within(2), pytest.raises(AuthUnavailable) as caught:
        call()
    assert caught.value.status == 503
    return caught.value.message


def test_a_fifo_at_the_cache_or_lock_path_is_refused_without_waiting(cache: TokenFile) -> None:
    os.mkfifo(cache.path)
    assert refused(lambda: cache.load("x")) == f"o_auth2 token cache oauth2/crm.age: {NOT_REGULAR}"
    assert refused(lambda: cache.save("x", token())).endswith(NOT_REGULAR)
    os.mkfifo(cache.lock.path)
    with pytest.raises(AuthUnavailable, match=NOT_REGULAR), within(2), cache.lock.held_now():
        pass


def test_a_directory_at_the_cache_path_is_refused(cache: TokenFile) -> None:
    cache.path.mkdir()
    assert refused(lambda: cache.load("x")).startswith("o_auth2 token cache oauth2/crm.age: ")
    assert refused(lambda: cache.save("x", token())).startswith("o_auth2 token cache")
    assert [p.name for p in cache.path.parent.iterdir()] == ["crm.age"]  # no temp file left


def test_symlinks_are_never_followed(cache: TokenFile, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    cache.path.symlink_to(target)
    assert refused(lambda: cache.load("x")).endswith(
        "cannot be opened (Too many levels of symbolic links)"
    )
    assert refused(lambda: cache.save("x", token()))
    cache.lock.path.symlink_to(target)
    with pytest.raises(AuthUnavailable), cache.lock.held_now():
        pass
    assert target.read_text() == "keep me"


def test_the_temporary_file_is_new_random_and_never_an_existing_path(
    cache: TokenFile, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # the former predictable names
        (cache.path.parent / f".crm.age.{pid}.tmp").symlink_to(target)
    cache.save("x", token())
    assert target.read_text() == "keep me"
    assert cache.load("x") == token()
    info = cache.path.lstat()
    assert stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 == 0
    temps = [p for p in cache.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 5 and all(p.is_symlink() for p in temps)


def test_an_open_directory_is_made_private_again(tmp_path: Path) -> None:
    (tmp_path / "oauth2").mkdir(mode=0o777)
    (tmp_path / "oauth2").chmod(0o777)
    TokenFile.for_credential(tmp_path, "crm", pyrage.x25519.Identity.generate())
    assert (tmp_path / "oauth2").stat().st_mode & 0o777 == 0o700


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "oauth2").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AuthUnavailable) as caught:
        TokenFile.for_credential(tmp_path, "crm", pyrage.x25519.Identity.generate())
    assert caught.value.message == (
        "o_auth2 token cache oauth2/oauth2: is not a directory owned by the runtime's user"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_owned_by_another_user_is_refused(cache: TokenFile) -> None:
    cache.save("x", token())
    os.chown(cache.path, 65534, 65534)
    assert refused(lambda: cache.load("x")).endswith(NOT_REGULAR)


def test_a_cache_that_cannot_be_used_fails_the_credential_before_any_token_request(
    cache: TokenFile,
) -> None:
    calls: list[str] = []

    async def post_form(url: str, form: Mapping[str, Any], headers: Mapping[str, Any]) -> Any:
        calls.append(url)
        return 200, {"access_token": "abcdefghij"}

    os.mkfifo(cache.path)
    config = OAuth2Config.from_auth(
        {"grant_type": "client_credentials", "token_endpoint": "https://auth.example.com/t"}, HOSTS
    )
    tokens = TokenManager(
        "crm",
        config,
        OAuth2Secret.from_json(SECRET, "client_credentials"),
        post_form=post_form,
        clock=lambda: 1000.0,
        cache=cache,
    )
    with within(2), pytest.raises(AuthUnavailable, match=NOT_REGULAR):
        asyncio.run(tokens.get_token(1.0))
    assert calls == []
