"""Method overrides in the request body: `_method` in forms and JSON."""

from __future__ import annotations

import pytest

from aivault_ops.runtime.model import Refusal
from aivault_ops.runtime.policy.checks.method_override import check_body_override

FORM = (("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),)
JSON = (("content-type", "application/json"),)
MULTIPART = (("Content-Type", "multipart/form-data; boundary=b"),)


def part(name: str, value: str = "DELETE") -> bytes:
    return (
        f"--b\r\nContent-Disposition: form-data; name={name}\r\n\r\n{value}\r\n--b--\r\n".encode()
    )


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (FORM, b"amount=5&_method=DELETE"),
        (FORM, b"_METHOD=DELETE"),
        (FORM, b"%5Fmethod=DELETE"),
        (FORM, b"_m%65thod=DELETE"),
        (FORM, b"_method[]=DELETE"),
        ((), b"_method=DELETE"),
        (JSON, b'{"amount": 5, "_method": "DELETE"}'),
        (JSON, b'{"\\u005fmethod": "DELETE"}'),
        ((("Content-Type", "application/vnd.api+json"),), b'{"_method": "PUT"}'),
        (MULTIPART, part('"_method"')),
        (MULTIPART, part("_method")),
        (MULTIPART, part('"_METHOD"')),
        ((("Content-Type", "text/plain"), *FORM), b"_method=DELETE"),
    ],
    ids=range(13),
)
def test_method_overrides_in_the_body_are_refused(
    headers: tuple[tuple[str, str], ...], body: bytes
) -> None:
    with pytest.raises(Refusal) as caught:
        check_body_override(headers, body)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        403,
        "E-BODY-FORBIDDEN",
        "the request body carries a method override ('_method'); it could make the upstream"
        " apply another method than the policy checked",
    )


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (FORM, b"method=flickr.photos.search&amount=5"),
        (JSON, b'{"messages": [{"_method": "nested is not read"}], "method": "x"}'),
        (JSON, b'"_method"'),
        (JSON, b"[" * 100_000),
        (JSON, b"not json _method"),
        (MULTIPART, part('"_methods"')),
        ((("Content-Type", "text/plain"),), b"_method=DELETE"),
        ((("Content-Type", "application/octet-stream"),), b"_method=DELETE"),
        (FORM, b""),
    ],
    ids=range(9),
)
def test_other_bodies_pass(headers: tuple[tuple[str, str], ...], body: bytes) -> None:
    check_body_override(headers, body)
