"""Signed bundles with several credentials of any auth strategy, for the auth e2e tests.

Each credential gets one capability `<name>/api` (GET and POST under `/v1`)
and reads its `secret` placeholder from one SOPS file (encrypted by the
real `sops` binary, values may be JSON text). The consumer `agent` (token
`support.bundles.TOKEN`) is granted every capability.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from support.bundles import TOKEN, make_identity, sha256_hex

from aivault_ops.bundle import SigningKey, build_bundle, publish_bundle
from aivault_ops.canonical_json import canonical_json

SECRETS = "secrets/auth.sops.yaml"


@dataclass(frozen=True)
class Cred:
    """One credential: its hosts, its `auth`, and the secret name it reads."""

    hosts: tuple[str, ...]
    auth: Any
    secret: str
    prefixes: tuple[str, ...] = ("/v1",)
    allow: tuple[tuple[str, Any], ...] = ()  # more capability fields (operations …)


def encrypt(directory: Path, recipient: str, values: Mapping[str, str]) -> bytes:
    """A SOPS YAML file holding `values` (any text, JSON included), by the real sops."""
    plain = directory / "auth-plain.yaml"
    plain.write_text(yaml.safe_dump(dict(values)))
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}
    args = ["sops", "-e", "--age", recipient, "--input-type", "yaml", "--output-type", "yaml"]
    result = subprocess.run([*args, str(plain)], capture_output=True, check=True, env=env)
    plain.unlink()
    return result.stdout


def policy(creds: Mapping[str, Cred], secret_file: bytes, names: list[str]) -> dict[str, Any]:
    """The policy document for `creds`."""
    return {
        "format": "aivault-ops/policy@1",
        "project": "test",
        "environment": "test",
        "providers": {n: {"source": "custom", "hosts": list(c.hosts)} for n, c in creds.items()},
        "credentials": {
            name: {
                "provider": name,
                "hosts": list(cred.hosts),
                "auth": cred.auth,
                "secrets": {"secret": {"file": SECRETS, "name": cred.secret}},
                "upstreamPathPrefix": "",
            }
            for name, cred in creds.items()
        },
        "capabilities": {
            f"{name}/api": {
                "credential": name,
                "provider": name,
                "source": "manifest",
                "methods": ["GET", "POST"],
                "pathPrefixes": list(cred.prefixes),
                "hosts": [cred.hosts[0]],
                "policy": {},
                **dict(cred.allow),
            }
            for name, cred in creds.items()
        },
        "consumers": {
            "agent": {
                "tokenSha256": sha256_hex(TOKEN),
                "capabilities": [f"{name}/api" for name in creds],
            }
        },
        "secretFiles": {
            SECRETS: {
                "sha256": hashlib.sha256(secret_file).hexdigest(),
                "format": "yaml",
                "names": sorted(names),
            }
        },
    }


@dataclass
class AuthBundles:
    """An age identity (the runtime's) and a signing key; publishes bundles."""

    directory: Path
    identity: Path
    recipient: str
    key: SigningKey

    @classmethod
    def create(cls, directory: Path) -> AuthBundles:
        """Fresh identity and key in `directory`."""
        identity, recipient = make_identity(directory)
        return cls(directory, identity, recipient, SigningKey.generate())

    @property
    def trust(self) -> str:
        """The `--trust` value."""
        return str(self.key.public_key)

    def publish(
        self, bundle_dir: Path, serial: int, creds: Mapping[str, Cred], values: Mapping[str, str]
    ) -> Path:
        """Encrypt `values`, build and sign the bundle, publish it as `bundle-<serial>`."""
        secret_file = encrypt(self.directory, self.recipient, values)
        document = policy(creds, secret_file, list(values))
        data = build_bundle(
            policy_json=canonical_json(document),
            secret_files={SECRETS: secret_file},
            serial=serial,
            revision=f"rev-{serial}",
            environment="test",
            expires_at=None,
            signing_key=self.key,
        )
        return publish_bundle(bundle_dir, data, serial)

    def runtime_options(self, *apps: tuple[str, Any]) -> dict[str, Any]:
        """InProcessRuntime options: this identity and key, `--dev-resolve` per (host, app)."""
        cas = {str(app.ca_file) for _, app in apps}
        if len(cas) > 1:
            raise ValueError("one --dev-ca-cert per runtime: serve every host from one app")
        return {
            "identity": self.identity,
            "trust": [self.trust],
            "dev_resolve": [app.dev_resolve(host) for host, app in apps],
            "dev_ca_cert": Path(cas.pop()) if cas else None,
        }
