"""Every form in which an upstream may echo a secret, and a TLS upstream that does so.

`FORMS` maps a name to an encoder (secret → the bytes an upstream writes),
one per form the redactor documents; `traces` decodes a response in every
documented way and reports where the secret still shows. `echo_upstream`
runs a real TLS server on 127.0.0.1 that takes the secret from the request's
`Authorization: Bearer <secret>` and echoes it in a chosen form:

- `.../body/<form>[?chunk=N]`: `text/plain` body `before <form> after`,
  chunked in N-byte pieces when `chunk` is given;
- `.../name/<form>`: a header `x-echo-<form>: 1` (the form must be a token);
- `.../value/<form>`: a header `x-echo: <form>`.
"""

from __future__ import annotations

import base64
import html
import html.entities
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote_to_bytes

from aiohttp import web
from support.tls_app import tls_app

from aivault_ops.runtime.response.redaction_forms import MIN_TRIMMED

HOST = "api.example.com"
Encoder = Callable[[str], bytes]


def _specials(secret: str, encode: Callable[[str], str]) -> bytes:
    """`encode` applied to every character that is not an ASCII letter or digit."""
    return "".join(c if c.isascii() and c.isalnum() else encode(c) for c in secret).encode()


def _every(secret: str, encode: Callable[[str], str]) -> bytes:
    return "".join(encode(c) for c in secret).encode()


def _json_unit(char: str, upper: bool = False) -> str:
    units = char.encode("utf-16-be")
    text = "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )
    return text.upper().replace("\\U", "\\u") if upper else text


def _go_json(secret: str) -> bytes:
    text = json.dumps(secret, ensure_ascii=False)[1:-1]
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _named(char: str, table: dict[int, str], fallback: Callable[[str], str]) -> str:
    name = table.get(ord(char))
    return f"&{name};" if name else fallback(char)


_HTML5 = {
    ord(text): name[:-1]
    for name, text in sorted(html.entities.html5.items(), reverse=True)
    if name.endswith(";") and len(text) == 1
}
_GO_HTML = {"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "+": "&#43;"}
_PHP_HTML = {"&": "&amp;", "'": "&#039;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_UPPER_HTML = {"&": "&AMP;", "<": "&LT;", ">": "&GT;", '"': "&QUOT;", "'": "&apos;"}


def _rotating(secret: str) -> bytes:
    """Each special character in the next of seven forms: any mix is one secret."""
    encoders: list[Callable[[str], str]] = [
        lambda c: c,
        lambda c: quote(c, safe=""),
        lambda c: f"&#{ord(c)};",
        _json_unit,
        lambda c: _named(c, _HTML5, lambda d: f"&#x{ord(d):X};"),
        lambda c: quote(quote(c, safe=""), safe=""),
        lambda c: json.dumps(c)[1:-1],
    ]
    out, turn = [], 0
    for char in secret:
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.append(encoders[turn % len(encoders)](char))
            turn += 1
    return "".join(out).encode()


def _wrapped(secret: str, width: int, newline: bytes) -> bytes:
    """base64 of a text holding the secret, wrapped so a line break falls inside it."""
    raw = secret.encode()
    prefix = b"x" * max(0, width * 3 // 4 - len(raw) // 2)
    encoded = base64.b64encode(prefix + raw + b"\r\n--end--")
    lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
    return newline.join(lines) + newline


FORMS: dict[str, Encoder] = {
    "raw": lambda s: s.encode(),
    "percent": lambda s: quote(s, safe="").encode(),
    "percent-lower": lambda s: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), quote(s, safe="")
    ).encode(),
    "percent-path": lambda s: quote(s).encode(),
    "form-plus": lambda s: quote_plus(s).encode(),
    "percent-twice": lambda s: quote(quote(s, safe=""), safe="").encode(),
    "percent-every-byte": lambda s: "".join(f"%{b:02X}" for b in s.encode()).encode(),
    "json-ascii": lambda s: json.dumps(s).encode()[1:-1],
    "json-utf8": lambda s: json.dumps(s, ensure_ascii=False).encode()[1:-1],
    "json-go": _go_json,
    "json-php-slash": lambda s: json.dumps(s).replace("/", "\\/").encode()[1:-1],
    "json-every-char": lambda s: _every(s, _json_unit),
    "json-every-char-upper": lambda s: _every(s, lambda c: _json_unit(c, upper=True)),
    "html-python": lambda s: html.escape(s).encode(),
    "html-python-text": lambda s: html.escape(s, quote=False).encode(),
    "html-go-template": lambda s: _specials(s, lambda c: _GO_HTML.get(c, c)),
    "html-php": lambda s: _specials(s, lambda c: _PHP_HTML.get(c, c)),
    "html-upper-named": lambda s: _specials(s, lambda c: _UPPER_HTML.get(c, c)),
    "html-html5-named": lambda s: _specials(s, lambda c: _named(c, _HTML5, lambda d: d)),
    "html-htmlentities": lambda s: _specials(
        s, lambda c: _named(c, html.entities.codepoint2name, lambda d: f"&#{ord(d):03d};")
    ),
    "html-decimal": lambda s: _specials(s, lambda c: f"&#{ord(c)};"),
    "html-decimal-zeros": lambda s: _specials(s, lambda c: f"&#{ord(c):07d};"),
    "html-hex-upper-x": lambda s: _specials(s, lambda c: f"&#X{ord(c):04X};"),
    "html-esapi": lambda s: _specials(s, lambda c: f"&#x{ord(c):x};"),
    "html-decimal-every-char": lambda s: _every(s, lambda c: f"&#{ord(c)};"),
    "html-hex-every-char": lambda s: _every(s, lambda c: f"&#x{ord(c):x};"),
    "html-hex-every-char-upper": lambda s: _every(s, lambda c: f"&#x{ord(c):X};"),
    "python-repr": lambda s: repr(s).encode()[1:-1],
    "python-bytes-repr": lambda s: repr(s.encode()).encode()[2:-1],
    "js-hex": lambda s: _specials(
        s, lambda c: f"\\x{ord(c):02x}" if c.isascii() else _json_unit(c)
    ),
    "mixed-per-char": _rotating,
    "base64": lambda s: base64.b64encode(s.encode()),
    "base64-unpadded": lambda s: base64.b64encode(s.encode()).rstrip(b"="),
    "base64url": lambda s: base64.urlsafe_b64encode(s.encode()),
    "base64url-unpadded": lambda s: base64.urlsafe_b64encode(s.encode()).rstrip(b"="),
    "base64-basic-auth": lambda s: base64.b64encode(b"user:" + s.encode()),
    "trimmed": lambda s: s.strip().encode(),
    "crlf-lines": lambda s: s.replace("\n", "\r\n").encode(),
    "crlf-lines-json": lambda s: json.dumps(s.replace("\n", "\r\n")).encode()[1:-1],
    "base64-mime-crlf": lambda s: _wrapped(s, 76, b"\r\n"),
    "base64-mime-lf": lambda s: _wrapped(s, 76, b"\n"),
    "base64-pem-64": lambda s: _wrapped(s, 64, b"\n"),
    "base64-width-60-crlf": lambda s: _wrapped(s, 60, b"\r\n"),
}
NAME_FORMS = ("percent", "percent-lower", "percent-every-byte", "base64url-unpadded")
"""Forms that are HTTP tokens for any secret, so an upstream can put them in a header name."""

_STRING_ESCAPE = re.compile(
    rb"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})|\\x([0-9a-f]{2})|\\(.)",
    re.IGNORECASE | re.DOTALL,
)
_SHORT = {
    b'"': b'"',
    b"\\": b"\\",
    b"/": b"/",
    b"'": b"'",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
}


def _unescape_string(match: re.Match[bytes]) -> bytes:
    pair_high, pair_low, unit, byte, short = match.groups()
    if pair_high:
        units = bytes.fromhex(pair_high.decode()) + bytes.fromhex(pair_low.decode())
        return units.decode("utf-16-be").encode()
    if unit:
        return chr(int(unit, 16)).encode("utf-8", "surrogatepass")
    if byte:
        return bytes.fromhex(byte.decode())
    return _SHORT.get(short, b"\\" + short)


def _html(data: bytes) -> bytes:
    return html.unescape(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _strings(data: bytes) -> bytes:
    return _STRING_ESCAPE.sub(_unescape_string, data)


def decoded_views(data: bytes) -> list[bytes]:
    """`data` as every documented decoder (and their chain) would read it."""
    once = unquote_to_bytes(data)
    plus = unquote_to_bytes(data.replace(b"+", b" "))
    views = [data, once, unquote_to_bytes(once), plus, _html(data), _strings(data)]
    return [*views, _strings(_html(unquote_to_bytes(once))), _strings(_html(once))]


def _base64_views(data: bytes) -> Iterator[bytes]:
    joined = data.replace(b"\r", b"").replace(b"\n", b"")
    for run in re.findall(rb"[A-Za-z0-9+/_-]{4,}", joined):
        standard = run.translate(bytes.maketrans(b"-_", b"+/"))
        for shift in range(4):
            body = standard[shift:]
            yield base64.b64decode(body[: len(body) // 4 * 4])


def traces(secret: str, data: bytes) -> list[str]:
    """Where `secret` is still readable in `data`: every spelling and decoder that finds it
    (also with its line breaks as CRLF, and trimmed if at least 8 characters are left)."""
    found = traces_of(secret, data)
    variants = {secret.replace("\n", "\r\n")}
    if len(secret.strip()) >= MIN_TRIMMED:
        variants.add(secret.strip())
    for variant in variants - {secret}:
        found += [f"{where} ({variant!r:.12})" for where in traces_of(variant, data)]
    return found


def traces_of(secret: str, data: bytes) -> list[str]:
    """Where exactly `secret` is still readable in `data`."""
    raw = secret.encode()
    found = [
        name
        for name, encode in FORMS.items()
        if name.startswith(("raw", "percent", "json", "html")) and encode(secret) in data
    ]
    found += [f"decoded view {i}" for i, view in enumerate(decoded_views(data)) if raw in view]
    found += ["base64" for view in _base64_views(data) if raw in view][:1]
    return found


@dataclass
class EchoUpstream:
    """The running upstream: its port and CA file."""

    port: int
    ca_file: Path

    def dev_resolve(self) -> str:
        """The `--dev-resolve` value sending the policy host here."""
        return f"{HOST}=127.0.0.1:{self.port}"


async def _body(request: web.Request, data: bytes) -> web.StreamResponse:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    chunk = int(request.query.get("chunk", "0"))
    if not chunk:
        return web.Response(body=data, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    for start in range(0, len(data), chunk):
        await response.write(data[start : start + chunk])
    await response.write_eof()
    return response


async def _handle(request: web.Request) -> web.StreamResponse:
    secret = request.headers.get("authorization", "").removeprefix("Bearer ")
    where, _, form = request.path.rpartition("/")
    echoed = FORMS[form](secret)
    if where.endswith("/name"):
        return web.Response(text="ok", headers={f"x-echo-{echoed.decode()}": "1"})
    if where.endswith("/value"):
        return web.Response(text="ok", headers={"x-echo": echoed.decode()})
    return await _body(request, b"before " + echoed + b" after\n")


@contextmanager
def echo_upstream(directory: Path) -> Iterator[EchoUpstream]:
    """Run the echoing upstream in a thread for the duration of the block."""
    with tls_app(directory, _handle, (HOST,)) as app:
        yield EchoUpstream(port=app.port, ca_file=app.ca_file)
