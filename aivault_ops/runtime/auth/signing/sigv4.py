"""`aws_sig_v4`: AWS Signature Version 4 for one upstream request.

The credential's secret JSON holds `access_key_id`, `secret_access_key` and
optionally `session_token`; the provider's `auth.aws_sig_v4` names `service`
and `region`. `SigV4Signer.sign` returns the headers to add to a request
that is otherwise final: `X-Amz-Date`, `X-Amz-Security-Token` (with a
session token), `X-Amz-Content-Sha256` (service `s3` only, as botocore and
the S3 API require it; other services do not need it and botocore does not
send it) and `Authorization`.

What it guarantees: the canonical request is built exactly as AWS (and
botocore's `SigV4Auth` / `S3SigV4Auth`) builds it, so the signature covers
the method, the path as sent, every query pair, every header given (minus
hop-by-hop ones) and the sha256 of the body. The secret access key never
leaves this module: only the HMAC-derived signing key (cached per day,
region and service) is used per request. Both, the access key id and the
session token are held as `Secret`s and revealed only to sign.

The caller must pass the exact percent-encoded path string that goes on
the wire and every header it sends, and must not change them afterwards;
headers the HTTP client adds later (user-agent, accept-encoding …) are not
signed, which AWS accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aivault_ops.runtime.auth.base import AuthUnavailable, config_dict, secret_invalid
from aivault_ops.secret import Secret

ALGORITHM: Final = "AWS4-HMAC-SHA256"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
# botocore's SIGNED_HEADERS_BLACKLIST: hop-by-hop headers and ones proxies rewrite.
UNSIGNED_HEADERS: Final = frozenset(
    {
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    }
)  # fmt: skip
ADDED_HEADERS: Final = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_KEY_ID: Final = re.compile(r"[!-.0-~]+")  # it goes into the Authorization header's scope
_TOKEN_TEXT: Final = re.compile(r"[!-~]+")  # it is sent as X-Amz-Security-Token
_SAFE_QUERY: Final = "-_.~"
_SAFE_PATH: Final = "/~"


@dataclass(frozen=True)
class AwsCredentials:
    """An access key pair, optionally with a session token (STS)."""

    access_key_id: Secret
    secret_access_key: Secret
    session_token: Secret | None = None

    @classmethod
    def from_json(cls, text: str) -> AwsCredentials:
        """Parse the secret JSON `{"access_key_id", "secret_access_key", "session_token"?}`."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise secret_invalid("aws_sig_v4 secret must be a JSON object")
        for key in ("access_key_id", "secret_access_key"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise secret_invalid(f"aws_sig_v4 secret needs a non-empty string {key!r}")
        token = data.get("session_token")
        if token is not None and (not isinstance(token, str) or not token):
            raise secret_invalid("aws_sig_v4 secret 'session_token' must be a non-empty string")
        if _KEY_ID.fullmatch(data["access_key_id"]) is None:
            raise secret_invalid(
                "aws_sig_v4 secret 'access_key_id' must be visible ASCII without '/' or blanks"
            )
        if token is not None and _TOKEN_TEXT.fullmatch(token) is None:
            raise secret_invalid("aws_sig_v4 secret 'session_token' must be visible ASCII")
        session = None if token is None else Secret(token)
        return cls(Secret(data["access_key_id"]), Secret(data["secret_access_key"]), session)

    def secret_values(self) -> tuple[Secret, ...]:
        """Values to redact from responses (the access key id is not a secret)."""
        session = () if self.session_token is None else (self.session_token,)
        return (self.secret_access_key, *session)


@dataclass(frozen=True, repr=False)
class SigV4Request:
    """The parts of a request that SigV4 covers.

    `path` is percent-encoded exactly as sent; `query` holds decoded pairs in
    any order; `headers` are every header sent except Host (derived from
    `host` and `port`) and the ones the signer adds.
    """

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes
    port: int = 443

    def __repr__(self) -> str:
        return f"SigV4Request(method={self.method!r}, host={self.host!r})"


def amz_date(now: datetime) -> str:
    """`YYYYMMDDTHHMMSSZ` in UTC; `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal, also collapsing empty segments (as AWS does)."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    trail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + trail


def canonical_uri(path: str, service: str) -> str:
    """The canonical URI: S3 signs the path as sent; others normalize and encode it again."""
    if service == "s3":
        return path or "/"
    return quote(remove_dot_segments(path), safe=_SAFE_PATH)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Each name and value URI-encoded (unreserved kept), sorted, `name=value` joined by `&`."""
    encoded = sorted(
        (quote(name, safe=_SAFE_QUERY), quote(value, safe=_SAFE_QUERY)) for name, value in pairs
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def signable_headers(headers: Iterable[tuple[str, str]], authority: str) -> dict[str, str]:
    """Lower-case name → values (trimmed, inner whitespace collapsed, repeats joined by ',')."""
    grouped: dict[str, list[str]] = {"host": [authority]}
    for name, value in headers:
        lower = name.lower()
        if lower in UNSIGNED_HEADERS or lower == "host":
            continue
        grouped.setdefault(lower, []).append(" ".join(value.split()))
    return {name: ",".join(values) for name, values in grouped.items()}


def canonical_request(request: SigV4Request, service: str, headers: Mapping[str, str]) -> str:
    """The canonical request string; `headers` already include the ones the signer adds."""
    names = sorted(headers)
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.path, service),
            canonical_query(request.query),
            "".join(f"{name}:{headers[name]}\n" for name in names),
            ";".join(names),
            payload,
        ]
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = _hmac(("AWS4" + secret_access_key).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


class SigV4Signer:
    """Signs requests for one credential, region and service."""

    def __init__(self, credentials: AwsCredentials, *, region: str, service: str) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self._key: tuple[str, Secret] | None = None

    @classmethod
    def from_config(cls, config: Any, credentials: AwsCredentials) -> SigV4Signer:
        """Build from `auth.aws_sig_v4` = `{"service", "region"}` (refused if malformed)."""
        spec = config_dict(config, "aws_sig_v4", ("service", "region"))
        for key in ("service", "region"):
            if not spec[key].replace("-", "").isalnum() or spec[key] != spec[key].lower():
                raise AuthUnavailable(f"auth.aws_sig_v4.{key} {spec[key]!r} is not valid")
        return cls(credentials, region=spec["region"], service=spec["service"])

    def added_header_names(self) -> frozenset[str]:
        """Lower-case names this signer sets: callers may not send them."""
        return ADDED_HEADERS

    def signing_key(self, date: str) -> bytes:
        """The signing key for `date` (YYYYMMDD), derived once per day and cached."""
        cached = self._key
        if cached is not None and cached[0] == date:
            return cached[1].reveal_bytes()
        secret = self._credentials.secret_access_key.reveal_text()
        key = derive_signing_key(secret, date, self.region, self.service)
        self._key = (date, Secret(key))
        return key

    def _own_headers(self, request: SigV4Request, stamp: str) -> list[tuple[str, str]]:
        added = [("X-Amz-Date", stamp)]
        if self._credentials.session_token is not None:
            token = self._credentials.session_token.reveal_text()
            added.append(("X-Amz-Security-Token", token))
        if self.service == "s3":
            added.append(("X-Amz-Content-Sha256", hashlib.sha256(request.body).hexdigest()))
        return added

    def sign(self, request: SigV4Request, now: datetime) -> tuple[tuple[str, str], ...]:
        """The headers to add to `request` so that AWS accepts it at time `now`.

        Their values carry the access key id and the session token: the
        caller keeps them as `Secret`s until they are written.
        """
        stamp = amz_date(now)
        date = stamp[:8]
        added = self._own_headers(request, stamp)
        given = [(n, v) for n, v in request.headers if n.lower() not in ADDED_HEADERS]
        headers = signable_headers([*given, *added], _authority(request.host, request.port))
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        digest = hashlib.sha256(canonical_request(request, self.service, headers).encode())
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{digest.hexdigest()}"
        signature = hmac.new(self.signing_key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"{ALGORITHM} Credential={self._credentials.access_key_id.reveal_text()}/{scope}, "
            f"SignedHeaders={';'.join(sorted(headers))}, Signature={signature}"
        )
        return (*added, ("Authorization", authorization))

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"


def _authority(host: str, port: int) -> str:
    host = host.lower()
    return host if port == 443 else f"{host}:{port}"
