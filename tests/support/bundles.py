"""Real signed bundles for runtime tests: policy dicts by hand, SOPS files by `sops`.

Policies follow docs/policy-format.md. The secret file is encrypted by the
real `sops` binary to a fresh `age-keygen` identity; bundles are built and
signed by the bundle library and published like `apply` does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aivault_ops.bundle import SigningKey, build_bundle, publish_bundle
from aivault_ops.canonical_json import canonical_json

CANARY = "sk-canary-3f9d2c7a1b8e4d6f"
TOKEN = "consumer-token-for-tests-0001"
OTHER_TOKEN = "consumer-token-for-tests-0002"
SECRET_PATH = "secrets/my-api.sops.yaml"
HOST = "api.example.com"
BEARER = {"header_name": "authorization", "value_template": "Bearer {{secret}}"}


def sha256_hex(text: str) -> str:
    """Hex sha256 of UTF-8 `text`."""
    return hashlib.sha256(text.encode()).hexdigest()


def make_identity(directory: Path) -> tuple[Path, str]:
    """A new age identity file and its recipient, by `age-keygen`."""
    path = directory / "runtime-age-identity.txt"
    result = subprocess.run(
        ["age-keygen", "-o", str(path)], capture_output=True, text=True, check=True
    )
    recipient = result.stderr.strip().rsplit(" ", 1)[-1]
    return path, recipient


def sops_encrypt(directory: Path, recipient: str, values: dict[str, str]) -> bytes:
    """A SOPS YAML file holding `values`, encrypted by the real sops binary."""
    plain = directory / "plain.yaml"
    plain.write_text("".join(f"{name}: {value}\n" for name, value in values.items()))
    env = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}
    args = ["sops", "-e", "--age", recipient, "--input-type", "yaml", "--output-type", "yaml"]
    result = subprocess.run([*args, str(plain)], capture_output=True, check=True, env=env)
    plain.unlink()
    return result.stdout


def policy(
    *,
    methods: tuple[str, ...] = ("GET", "POST"),
    prefixes: tuple[str, ...] = ("/v1/users",),
    limits: dict[str, Any] | None = None,
    secret_file: bytes = b"",
    host: str = HOST,
    auth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One header-auth credential `my-api`, capability `my-api/users`, consumer `agent`."""
    return {
        "format": "aivault-ops/policy@1",
        "project": "test",
        "environment": "test",
        "providers": {"my-api": {"source": "custom", "hosts": [host]}},
        "credentials": {
            "my-api": {
                "provider": "my-api",
                "hosts": [host],
                "auth": auth or {"header": BEARER},
                "secrets": {"secret": {"file": SECRET_PATH, "name": "MY_KEY"}},
                "upstreamPathPrefix": "",
            }
        },
        "capabilities": {
            "my-api/users": {
                "credential": "my-api",
                "provider": "my-api",
                "source": "manifest",
                "methods": sorted(methods),
                "pathPrefixes": list(prefixes),
                "hosts": [host],
                "policy": limits or {},
            }
        },
        "consumers": {
            "agent": {"tokenSha256": sha256_hex(TOKEN), "capabilities": ["my-api/*"]},
            "bystander": {"tokenSha256": sha256_hex(OTHER_TOKEN), "capabilities": ["other/*"]},
        },
        "secretFiles": {
            SECRET_PATH: {
                "sha256": hashlib.sha256(secret_file).hexdigest(),
                "format": "yaml",
                "names": ["MY_KEY"],
            }
        },
    }


@dataclass
class BundleFactory:
    """Signs bundles with one key around one encrypted secret file."""

    signing_key: SigningKey
    secret_file: bytes
    identity: Path

    @property
    def trust(self) -> str:
        """The `--trust` value for this factory's key."""
        return str(self.signing_key.public_key)

    def build(
        self,
        serial: int,
        *,
        expires_at: datetime | None = None,
        key: SigningKey | None = None,
        **policy_options: Any,
    ) -> bytes:
        """The bytes of a signed bundle."""
        document = policy(secret_file=self.secret_file, **policy_options)
        return build_bundle(
            policy_json=canonical_json(document),
            secret_files={SECRET_PATH: self.secret_file},
            serial=serial,
            revision=f"rev-{serial}",
            environment="test",
            expires_at=expires_at,
            signing_key=key or self.signing_key,
        )

    def publish(self, target: Path, serial: int, **options: Any) -> Path:
        """Build and publish atomically as `bundle-<serial>.tar.gz`."""
        return publish_bundle(target, self.build(serial, **options), serial)


def make_factory(directory: Path, values: dict[str, str] | None = None) -> BundleFactory:
    """A factory with a fresh age identity, signing key and SOPS file."""
    identity, recipient = make_identity(directory)
    secret_file = sops_encrypt(directory, recipient, values or {"MY_KEY": CANARY})
    return BundleFactory(SigningKey.generate(), secret_file, identity)
