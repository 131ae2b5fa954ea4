"""A local HTTPS upstream for trying the runtime on one machine (development only).

It stands in for a policy host such as `api.example.com`: a throwaway CA
and a certificate for the given names are made at start (nothing is
written but the CA certificate the runtime must trust), and every request
is answered with JSON describing what arrived, **request headers
included**, as a careless upstream might echo them. That makes it show two
things: the credential the runtime injected (printed on this server's
stderr, since it is your development secret) and that the runtime redacts
it from what the caller gets back.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_LIFETIME = datetime.timedelta(days=2)


@dataclass(frozen=True)
class ServerFiles:
    """Where the CA certificate (to trust) and the server's key pair were written."""

    ca_cert: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: str, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _LIFETIME)
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_certificates(hosts: Sequence[str], directory: Path) -> ServerFiles:
    """A throwaway CA and a server certificate for `hosts`, written to `directory`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("aivault-ops dev-upstream CA", "aivault-ops dev-upstream CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(hosts[0], "aivault-ops dev-upstream CA", key.public_key())
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    files = ServerFiles(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files.key.touch(mode=0o600)
    files.key.write_bytes(pem)
    return files


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every method with JSON: method, path, the request headers, body size."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("authorization", "")
        sys.stderr.write(f"upstream received {self.command} {self.path} authorization={auth!r}\n")
        sys.stderr.flush()
        payload = {
            "method": self.command,
            "path": self.path,
            "echoedHeaders": dict(self.headers.items()),
            "bodyBytes": len(body),
        }
        data = json.dumps(payload, indent=2).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: `_answer` prints one line per request."""


def start_server(files: ServerFiles, port: int = 0) -> ThreadingHTTPServer:
    """The echo server on 127.0.0.1:`port` (0: any free port), TLS with `files`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), EchoHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def serve_flags(hosts: Sequence[str], port: int, ca_cert: Path) -> list[str]:
    """The `serve` options that send `hosts` here and trust the throwaway CA."""
    flags: list[str] = []
    for host in hosts:
        flags += ["--dev-resolve", f"{host}=127.0.0.1:{port}"]
    return [*flags, "--dev-ca-cert", str(ca_cert)]


def default_directory() -> Path:
    """A fresh private temporary directory for the certificates."""
    return Path(tempfile.mkdtemp(prefix="aivault-dev-upstream-"))
