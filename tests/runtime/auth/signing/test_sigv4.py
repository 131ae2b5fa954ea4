"""SigV4: side by side with botocore's signer, and the AWS test-suite vanilla vectors."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aivault_ops.runtime.auth.base import AuthUnavailable
from aivault_ops.runtime.auth.signing.sigv4 import (
    AwsCredentials,
    SigV4Request,
    SigV4Signer,
    amz_date,
    remove_dot_segments,
)
from aivault_ops.secret import Secret

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//session+token="
NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


def aws(token: str | None = None) -> AwsCredentials:
    return AwsCredentials(Secret(AKID), Secret(SECRET), None if token is None else Secret(token))


CASES: dict[str, tuple[str, SigV4Request, bool]] = {
    "get-root": ("iam", SigV4Request("GET", "iam.amazonaws.com", "/", (), (), b""), False),
    "spaces": (
        "execute-api",
        SigV4Request(
            "GET", "abc.execute-api.eu-west-1.amazonaws.com", "/my%20path/a%20b", (), (), b""
        ),
        False,
    ),
    "unicode": (
        "execute-api",
        SigV4Request("GET", "api.example.com", "/caf%C3%A9/%E2%9C%93", (("ü", "€"),), (), b""),
        False,
    ),
    "encoded-slash": ("lambda", SigV4Request("GET", "h.example", "/a%2Fb/c", (), (), b""), False),
    "dots-and-slashes": (
        "execute-api",
        SigV4Request("GET", "h.example", "/a//b/./c/../d/", (), (), b""),
        False,
    ),
    "repeated-query": (
        "sqs",
        SigV4Request(
            "GET", "sqs.us-east-1.amazonaws.com", "/", (("b", "2"), ("a", "z"), ("a", "y")), (), b""
        ),
        False,
    ),
    "empty-query": (
        "sqs",
        SigV4Request(
            "GET", "sqs.example", "/q", (("flag", ""), ("empty", ""), ("x", "1")), (), b""
        ),
        False,
    ),
    "query-encoding": (
        "es",
        SigV4Request(
            "GET",
            "es.example",
            "/_search",
            (("q", "a b/c+d=e&f"), ("*", "~"), ("k", "%41")),
            (),
            b"",
        ),
        False,
    ),
    "post-json": (
        "dynamodb",
        SigV4Request(
            "POST",
            "dynamodb.us-east-1.amazonaws.com",
            "/",
            (),
            (
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", "DynamoDB_20120810.ListTables"),
            ),
            b'{"Limit": 3}',
        ),
        False,
    ),
    "session-token": (
        "sts",
        SigV4Request(
            "POST", "sts.amazonaws.com", "/", (("Action", "GetCallerIdentity"),), (), b"x=1"
        ),
        True,
    ),
    "headers-whitespace-and-repeats": (
        "execute-api",
        SigV4Request(
            "PUT",
            "h.example",
            "/r",
            (),
            (
                ("X-Custom", "  a   b  "),
                ("x-custom", "c"),
                ("User-Agent", "not signed"),
                ("Accept", "*/*"),
            ),
            b"\x00\xffbinary",
        ),
        False,
    ),
    "other-port": (
        "execute-api",
        SigV4Request("GET", "Host.Example", "/p", (), (), b"", port=8443),
        False,
    ),
    "s3-get-odd-key": (
        "s3",
        SigV4Request(
            "GET",
            "bucket.s3.amazonaws.com",
            "/my%20key%2Fx/caf%C3%A9",
            (("list-type", "2"),),
            (),
            b"",
        ),
        False,
    ),
    "s3-put-meta": (
        "s3",
        SigV4Request(
            "PUT",
            "bucket.s3.eu-central-1.amazonaws.com",
            "/dir//a/../b.txt",
            (),
            (("Content-Type", "text/plain"), ("x-amz-meta-tag", " one  two ")),
            b"hello world",
        ),
        True,
    ),
}


def ours(service: str, request: SigV4Request, token: bool, now: datetime) -> dict[str, str]:
    credentials = aws(TOKEN if token else None)
    signer = SigV4Signer(credentials, region="eu-west-1", service=service)
    return {name.lower(): value for name, value in signer.sign(request, now)}


def botocores(
    service: str, request: SigV4Request, token: bool, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)
    authority = request.host if request.port == 443 else f"{request.host}:{request.port}"
    aws = AWSRequest(
        method=request.method,
        url=f"https://{authority}{request.path}",
        data=request.body,
        params=list(request.query),
    )
    for name, value in request.headers:
        aws.headers[name] = value
    auth_class = S3SigV4Auth if service == "s3" else SigV4Auth
    auth_class(Credentials(AKID, SECRET, TOKEN if token else None), service, "eu-west-1").add_auth(
        aws
    )
    given = {name.lower() for name, _ in request.headers}
    return {name.lower(): value for name, value in aws.headers.items() if name.lower() not in given}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_headers_as_botocore(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service, request, token = CASES[case]
    expected = botocores(service, request, token, NOW, monkeypatch)
    assert ours(service, request, token, NOW) == expected
    assert expected["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/20150830/")


def test_s3_sends_the_payload_hash_and_others_do_not() -> None:
    s3 = ours("s3", CASES["s3-put-meta"][1], False, NOW)
    assert s3["x-amz-content-sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert "x-amz-content-sha256" not in ours(*CASES["post-json"][:2], False, NOW)


def test_session_token_header_only_with_a_token() -> None:
    assert ours(*CASES["session-token"][:2], True, NOW)["x-amz-security-token"] == TOKEN
    assert "x-amz-security-token" not in ours(*CASES["session-token"][:2], False, NOW)


def test_reprs_show_no_path_and_the_added_names_are_auth_class() -> None:
    request = SigV4Request("GET", "h.example", "/secret-path", (("k", "v"),), (), b"body")
    assert repr(request) == "SigV4Request(method='GET', host='h.example')"
    signer = SigV4Signer(aws(), region="us-east-1", service="s3")
    assert signer.added_header_names() == {
        "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
    }  # fmt: skip


def test_caller_copies_of_signer_headers_are_replaced() -> None:
    forged = SigV4Request("GET", "h.example", "/", (), (("X-Amz-Date", "19990101T000000Z"),), b"")
    clean = SigV4Request("GET", "h.example", "/", (), (), b"")
    assert ours("iam", forged, False, NOW) == ours("iam", clean, False, NOW)


def _h(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _vanilla_signature(canonical_request: str) -> str:
    """The AWS SigV4 test-suite computation, written out step by step."""
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    k_date = _h(b"AWS4" + SECRET.encode(), "20150830")
    k_region = _h(k_date, "us-east-1")
    k_service = _h(k_region, "service")
    k_signing = _h(k_service, "aws4_request")
    return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


VANILLA = {
    "get-vanilla": (
        (),
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        + hashlib.sha256(b"").hexdigest(),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-vanilla-query-order-key-case": (
        (("Param2", "value2"), ("Param1", "value1")),
        "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + hashlib.sha256(b"").hexdigest(),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
}


@pytest.mark.parametrize("name", sorted(VANILLA))
def test_aws_vanilla_vectors(name: str) -> None:
    query, canonical, published = VANILLA[name]
    assert _vanilla_signature(canonical) == published
    signer = SigV4Signer(aws(), region="us-east-1", service="service")
    request = SigV4Request("GET", "example.amazonaws.com", "/", query, (), b"")
    headers = dict(signer.sign(request, NOW))
    assert headers == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        f"aws4_request, SignedHeaders=host;x-amz-date, Signature={published}",
    }


def test_signing_key_is_derived_once_per_day() -> None:
    signer = SigV4Signer(aws(), region="us-east-1", service="service")
    first = signer.signing_key("20150830")
    assert signer.signing_key("20150830") is first
    assert signer.signing_key("20150831") != first
    assert signer.signing_key("20150831") is signer.signing_key("20150831")


def test_date_is_converted_to_utc_and_must_be_aware() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert amz_date(datetime(2015, 8, 30, 14, 36, tzinfo=plus_two)) == "20150830T123600Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        amz_date(datetime(2015, 8, 30, 12, 36))


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a/./b/../c", "/a/c"),
        ("//a//b/", "/a/b/"),
        ("/..", "/"),
        ("/a/..", "/"),
    ],
)
def test_remove_dot_segments(path: str, normalized: str) -> None:
    assert remove_dot_segments(path) == normalized


def test_credentials_from_json_and_repr() -> None:
    fields = {"access_key_id": AKID, "secret_access_key": SECRET, "session_token": TOKEN}
    parsed = AwsCredentials.from_json(json.dumps(fields))
    assert parsed == aws(TOKEN)
    assert parsed.secret_values() == (Secret(SECRET), Secret(TOKEN))
    assert SECRET not in repr(parsed) and TOKEN not in repr(parsed)
    assert SECRET not in repr(SigV4Signer(parsed, region="us-east-1", service="s3"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "aws_sig_v4 secret must be a JSON object"),
        ('["a"]', "aws_sig_v4 secret must be a JSON object"),
        (
            '{"access_key_id": "A"}',
            "aws_sig_v4 secret needs a non-empty string 'secret_access_key'",
        ),
        (
            '{"access_key_id": "A", "secret_access_key": "B", "session_token": 3}',
            "aws_sig_v4 secret 'session_token' must be a non-empty string",
        ),
        (
            '{"access_key_id": "AKIA\\r\\nX-Evil: 1", "secret_access_key": "B"}',
            "aws_sig_v4 secret 'access_key_id' must be visible ASCII without '/' or blanks",
        ),
        (
            '{"access_key_id": "AKIA/2020", "secret_access_key": "B"}',
            "aws_sig_v4 secret 'access_key_id' must be visible ASCII without '/' or blanks",
        ),
        (
            '{"access_key_id": "AKIA", "secret_access_key": "B", "session_token": "a\\nb"}',
            "aws_sig_v4 secret 'session_token' must be visible ASCII",
        ),
    ],
)
def test_bad_secret_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(AuthUnavailable) as caught:
        AwsCredentials.from_json(text)
    assert caught.value.message == message
    assert (caught.value.status, caught.value.code) == (503, "E-CREDENTIAL-SECRET-INVALID")


def test_from_config() -> None:
    signer = SigV4Signer.from_config({"service": "s3", "region": "eu-west-1"}, aws())
    assert (signer.service, signer.region) == ("s3", "eu-west-1")
    with pytest.raises(AuthUnavailable) as caught:
        SigV4Signer.from_config({"service": "s3", "region": "eu west"}, aws())
    assert caught.value.message == "auth.aws_sig_v4.region 'eu west' is not valid"
    with pytest.raises(AuthUnavailable, match="must be a non-empty string"):
        SigV4Signer.from_config({"service": "s3"}, aws())
