"""One list of request headers that are never forwarded, used by the sanitiser and the client."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.errors import Refusal
from aivault_ops.runtime.hop_by_hop import HOP_BY_HOP, NOT_FORWARDED, connection_tokens
from aivault_ops.runtime.policy.checks.headers import HeaderPolicy
from aivault_ops.runtime.upstream.client import outgoing_headers

# What the three lists that came before this one dropped: the server's passthrough
# filter, the request sanitiser's and the upstream client's. None may be forwarded.
SERVER = {"host", "connection", "keep-alive", "proxy-connection", "content-length",
          "transfer-encoding", "te", "trailer", "upgrade", "expect", "accept-encoding"}  # fmt: skip
SANITISER = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "expect"}
CLIENT = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}


def test_the_one_list_holds_everything_any_earlier_list_dropped() -> None:
    assert SERVER | SANITISER | CLIENT <= NOT_FORWARDED


@pytest.mark.parametrize("name", sorted(NOT_FORWARDED))
def test_the_sanitiser_and_the_client_drop_every_name_on_it(name: str) -> None:
    headers = ((name.title(), "x"), ("X-Keep", "1"))
    for passthrough in (True, False):
        assert HeaderPolicy().sanitize(headers, passthrough=passthrough) == [("X-Keep", "1")]
    assert outgoing_headers(headers) == (("X-Keep", "1"), ("accept-encoding", "identity"))


def test_passthrough_drops_its_own_hop_before_judging_an_envelope_judges_everything() -> None:
    headers = (("Connection", "close, Cookie"), ("Cookie", "a=b"), ("X-Keep", "1"))
    assert connection_tokens(headers) == {"close", "cookie"}
    assert HeaderPolicy().sanitize(headers, passthrough=True) == [("X-Keep", "1")]
    with pytest.raises(Refusal, match="auth-class header") as caught:
        HeaderPolicy().sanitize(headers, passthrough=False)
    assert caught.value.code == "E-HEADER-FORBIDDEN"
