"""An echoing upstream must not hand a secret back in any form the redactor documents.

Security regressions (each leaked before): HTML character references,
JSON's short escapes (`\\n` in a PEM key), base64 wrapped with line breaks
(MIME, PEM), double percent-encoding, string-literal escapes, and a secret
in a response header name. Table-driven over every form in
`support.echo_forms.FORMS`, for secrets holding the characters encoders
touch, whole and at chunk splits, then end to end through the runtime.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.bundles import TOKEN, BundleFactory, make_factory
from support.echo_forms import FORMS, NAME_FORMS, EchoUpstream, echo_upstream, traces
from support.response_runtime import Served, serving
from support.runtime_proc import scan_tree

from aivault_ops.runtime.response.redaction import MARK, SecretRedactor
from aivault_ops.secret import Secret

SPECIAL = "sk-Can&ary<1>\"2'3/4+5=6 7é8😀9\\0%#;~x"
MULTILINE = "line-one/abc\nline-two+xyz\r\n\tindent=1\x08\x0c"


def _pem() -> str:
    body = base64.b64encode(random.Random(7).randbytes(1216)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n"


PEM = _pem()
SECRETS = {"special": SPECIAL, "multiline": MULTILINE, "pem": PEM}
REDACTORS = {name: SecretRedactor([Secret(secret)]) for name, secret in SECRETS.items()}
CHUNKS = {"special": (1, 2, 3, 7, 64), "multiline": (1, 5, 64), "pem": (97, 1024)}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _body(secret: str, form: str) -> bytes:
    return b"<p>before " + FORMS[form](secret) + b" after</p>\n\n"


def _streamed(redactor: SecretRedactor, body: bytes, cuts: list[int]) -> bytes:
    stream = redactor.stream()
    points = [0, *sorted({min(cut, len(body)) for cut in cuts}), len(body)]
    pieces = [stream.feed(body[a:b]) for a, b in itertools.pairwise(points)]
    return b"".join(pieces) + stream.flush()


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_form_is_redacted(name: str, form: str) -> None:
    redacted = REDACTORS[name].redact(_body(SECRETS[name], form))
    assert traces(SECRETS[name], redacted) == []
    assert MARK in redacted


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_form_is_redacted_at_every_chunk_size(name: str, form: str) -> None:
    body = _body(SECRETS[name], form)
    whole = REDACTORS[name].redact(body)
    for size in CHUNKS[name]:
        streamed = _streamed(REDACTORS[name], body, list(range(size, len(body), size)))
        assert traces(SECRETS[name], streamed) == [], size
        assert streamed == whole, size


_SECRET_CHARS = st.sampled_from(list("aZ09-_.~&<>\"'/+= \n\t\\%#;é😀\u2028"))
_TEXT_CHARS = st.sampled_from(list('abcXYZ019 {}[]:,"<>/\n'))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=st.text(_SECRET_CHARS, min_size=8, max_size=30),
    form=st.sampled_from(sorted(FORMS)),
    before=st.text(_TEXT_CHARS, max_size=20),
    after=st.text(_TEXT_CHARS, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=6),
)
def test_property_an_encoded_secret_in_random_text_is_redacted(
    secret: str, form: str, before: str, after: str, cuts: list[int]
) -> None:
    redactor = SecretRedactor([Secret(secret)])
    body = before.encode() + FORMS[form](secret) + after.encode()
    redacted = redactor.redact(body)
    assert traces(secret, redacted) == []
    assert _streamed(redactor, body, cuts) == redacted


@pytest.mark.parametrize("form", NAME_FORMS)
def test_a_header_named_after_the_secret_is_dropped(form: str) -> None:
    echoed = FORMS[form](SPECIAL).decode()
    headers = [("X-Echo-" + echoed, "1"), ("x-echo-" + echoed.lower(), "1"), ("Vary", "Accept")]
    assert REDACTORS["special"].redact_headers(headers) == [("Vary", "Accept")]


def test_a_header_named_after_a_plain_secret_is_dropped_in_any_case() -> None:
    redactor = SecretRedactor([Secret("sk-Canary-0123456789abcdef")])
    headers = [("sk-Canary-0123456789abcdef", "1"), ("X-SK-CANARY-0123456789ABCDEF", "1")]
    assert redactor.redact_headers([*headers, ("Date", "today")]) == [("Date", "today")]


# End to end: a real runtime in front of the echoing TLS upstream.

E2E_SECRET = "sk-Can&ary<1>\"2'3/4+5=6 7é8😀9\\0%#;~x"
BODY_FORMS = sorted(FORMS)
VALUE_FORMS = ["html-python", "json-go", "percent-twice", "mixed-per-char", "python-bytes-repr"]


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoUpstream]:
    with echo_upstream(tmp_path_factory.mktemp("echo")) as running:
        yield running


@pytest.fixture(scope="module")
def special_factory(tmp_path_factory: pytest.TempPathFactory) -> BundleFactory:
    """A factory whose secret file holds `E2E_SECRET` (a YAML double-quoted scalar)."""
    return make_factory(
        tmp_path_factory.mktemp("factory"), {"MY_KEY": json.dumps(E2E_SECRET, ensure_ascii=False)}
    )


@pytest.fixture(scope="module", params=["inprocess", "subprocess"])
def runtime(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    special_factory: BundleFactory,
    echo: EchoUpstream,
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp(f"forms-{request.param}")
    with serving(request.param, root, special_factory, echo, {}) as served:
        yield served
    assert E2E_SECRET not in served.runtime.log()
    assert scan_tree(root / "state", E2E_SECRET) == []


def _get(runtime: Served, path: str) -> httpx.Response:
    response = httpx.get(f"{runtime.url}/v/my-api/v1/users/{path}", headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    head = "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items())
    assert traces(E2E_SECRET, head.encode()) == []
    assert traces(E2E_SECRET, response.content) == []
    return response


@pytest.mark.parametrize("chunk", ["", "?chunk=7"])
@pytest.mark.parametrize("form", BODY_FORMS)
def test_the_runtime_redacts_every_body_form(runtime: Served, form: str, chunk: str) -> None:
    response = _get(runtime, f"body/{form}{chunk}")
    assert response.content.startswith(b"before ")
    assert MARK in response.content


@pytest.mark.parametrize("form", ["html-python", "base64-mime-crlf", "json-ascii"])
def test_the_runtime_redacts_in_the_envelope(runtime: Served, form: str) -> None:
    request = {"method": "GET", "path": f"/v1/users/body/{form}"}
    body = {"capability": "my-api/users", "request": request}
    answer = httpx.post(runtime.url + "/aivault/proxy", json=body, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    assert traces(E2E_SECRET, answer.content) == []
    assert MARK.decode() in answer.json()["body"]


@pytest.mark.parametrize("form", NAME_FORMS)
def test_the_runtime_drops_a_header_named_after_the_secret(runtime: Served, form: str) -> None:
    response = _get(runtime, f"name/{form}")
    assert [name for name in response.headers if name.startswith("x-echo")] == []


@pytest.mark.parametrize("form", VALUE_FORMS)
def test_the_runtime_redacts_a_header_value(runtime: Served, form: str) -> None:
    response = _get(runtime, f"value/{form}")
    assert MARK.decode() in response.headers["x-echo"]
