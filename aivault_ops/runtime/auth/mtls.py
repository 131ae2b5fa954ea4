"""`mtls`: a client certificate and key from the secret, for this credential's connections only.

The secret is JSON `{"certificate": PEM, "private_key": PEM}` (`certificate`
may carry intermediates after the leaf). The pair is loaded into a TLS
context of its own when the policy loads; the upstream client keeps one
connection pool per such context, so the certificate is never presented on
another credential's connection. The key goes to OpenSSL through an
anonymous in-memory file (`memfd`): it is never written to disk. After
the load the key is held by OpenSSL in that context, and by the runtime only
as a `Secret` (to redact it from responses).
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from typing import Any

from aivault_ops.runtime.auth.base import AuthContext, AuthUnavailable, Injection, secret_invalid
from aivault_ops.runtime.auth.request_auth import ClientTls
from aivault_ops.secret import Secret


def _pair(text: str) -> tuple[str, str]:
    """(certificate PEM, private key PEM) from the secret JSON."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise secret_invalid("mtls secret must be a JSON object")
    for key, marker in (("certificate", "CERTIFICATE-----"), ("private_key", "PRIVATE KEY-----")):
        if not isinstance(data.get(key), str) or marker not in data[key]:
            raise secret_invalid(f"mtls secret needs a PEM string {key!r}")
    return data["certificate"], data["private_key"]


def load_client_pair(context: ssl.SSLContext, certificate: str, private_key: str) -> None:
    """Load the pair into `context` from memory; a key not matching the certificate is refused."""
    if not hasattr(os, "memfd_create"):
        raise AuthUnavailable("mtls needs memfd_create (Linux) to load a key without a file")
    fd = os.memfd_create("aivault-mtls", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "w", encoding="utf-8") as pem:
            pem.write(certificate.rstrip("\n") + "\n" + private_key)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    except ssl.SSLError:
        raise secret_invalid("mtls certificate and private key do not load as a pair") from None
    finally:
        os.close(fd)


def build(context: AuthContext) -> Injection:
    """A TLS context holding the client certificate; the private key is redacted from responses."""
    secret = context.variables.get("secret")
    if secret is None:
        raise AuthUnavailable("auth mtls needs the credential's 'secret' placeholder")
    certificate, private_key = _pair(secret.reveal_text())
    tls = context.services.tls_context()
    load_client_pair(tls, certificate, private_key)
    key = hashlib.sha256(f"{context.credential}\n{certificate}\n{private_key}".encode()).hexdigest()
    return Injection(secret_values=(Secret(private_key),), client_tls=ClientTls(key, tls))
