"""Signed bundles for the benchmarks, built by the project's own libraries.

`SmallBundles`: one header-auth credential `my-api` toward `api.example.com`
(capability `my-api/users`, consumer `agent`), by hand as in the runtime
tests, re-signed per serial (the reload benchmark adds a path per serial).
`big_project`: a policy repo of N capabilities and M secret files made by
`benchmarks.compile`'s generator, compiled and signed by the real pipeline.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrage import x25519

from aivault_ops import sops
from aivault_ops.bundle import SigningKey, build_bundle
from aivault_ops.canonical_json import canonical_json
from aivault_ops.compiled_project import compile_project, sign_bundle
from aivault_ops.sops import EncryptionRule, KeyPlan, encrypt_plaintext

HOST = "api.example.com"
SECRET_PATH = "secrets/my-api.sops.yaml"
UPSTREAM_PATH = "/v1/users"


@dataclass(frozen=True)
class Keys:
    """A runtime age identity (written to a file) and a signing key."""

    identity_file: Path
    recipient: str
    signing_key: SigningKey
    token: str

    @property
    def trust(self) -> str:
        """The `--trust` value."""
        return str(self.signing_key.public_key)

    @classmethod
    def create(cls, directory: Path) -> Keys:
        """New keys; the identity file goes in `directory` (0600)."""
        identity = x25519.Identity.generate()
        path = directory / "runtime-age.txt"
        path.write_text(f"{identity}\n")
        path.chmod(0o600)
        token = "bench-" + secrets.token_hex(16)
        return cls(path, str(identity.to_public()), SigningKey.generate(), token)


def sha256_hex(text: str) -> str:
    """Hex sha256 of UTF-8 `text`."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SmallBundles:
    """Bundles around one SOPS file holding the upstream API key `secret`."""

    keys: Keys
    secret: str
    secret_file: bytes

    @classmethod
    def create(cls, keys: Keys) -> SmallBundles:
        """Encrypt a fresh API key to the runtime recipient."""
        secret = "sk-bench-" + secrets.token_hex(12)
        plain = f"MY_KEY: {secret}\n".encode()
        data = encrypt_plaintext(
            plain, format_="yaml", plan=KeyPlan(((keys.recipient,),)), rule=EncryptionRule()
        )
        return cls(keys, secret, data)

    def policy(self, extra_prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
        """The policy document (format as in docs/policy-format.md)."""
        auth = {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}}
        return {
            "format": "aivault-ops/policy@1",
            "project": "bench",
            "environment": "bench",
            "providers": {"my-api": {"source": "custom", "hosts": [HOST]}},
            "credentials": {
                "my-api": {
                    "provider": "my-api",
                    "hosts": [HOST],
                    "auth": auth,
                    "secrets": {"secret": {"file": SECRET_PATH, "name": "MY_KEY"}},
                    "upstreamPathPrefix": "",
                }
            },
            "capabilities": {
                "my-api/users": {
                    "credential": "my-api",
                    "provider": "my-api",
                    "source": "manifest",
                    "methods": ["GET", "POST"],
                    "pathPrefixes": [UPSTREAM_PATH, *extra_prefixes],
                    "hosts": [HOST],
                    "policy": {},
                }
            },
            "consumers": {
                "agent": {
                    "tokenSha256": sha256_hex(self.keys.token),
                    "capabilities": ["my-api/*"],
                }
            },
            "secretFiles": {
                SECRET_PATH: {
                    "sha256": hashlib.sha256(self.secret_file).hexdigest(),
                    "format": "yaml",
                    "names": ["MY_KEY"],
                }
            },
        }

    def build(self, serial: int, extra_prefixes: tuple[str, ...] = ()) -> bytes:
        """A signed bundle with this serial."""
        return build_bundle(
            policy_json=canonical_json(self.policy(extra_prefixes)),
            secret_files={SECRET_PATH: self.secret_file},
            serial=serial,
            revision=f"bench-{serial}",
            environment="bench",
            expires_at=None,
            signing_key=self.keys.signing_key,
        )


def big_project(root: Path, keys: Keys, capabilities: int, secret_files: int) -> bytes:
    """A signed bundle of `write_repo`'s repo (the one `benchmarks.compile` measures),
    encrypted to `keys.recipient`, consumer `agent` holding `keys.token`."""
    write_repo(root, keys.recipient, sha256_hex(keys.token), capabilities, secret_files)
    compiled = compile_project(root, environment=None)
    return sign_bundle(
        compiled, serial=1, revision="bench", expires_at=None, signing_key=keys.signing_key
    )


def write_repo(
    root: Path, recipient: str, token_sha256: str, capabilities: int, secret_files: int
) -> None:
    """A valid policy repo: `capabilities` over `secret_files` credentials (custom
    provider `api-<i>` toward `api-<i>.example.com`, one SOPS file each, encrypted to
    `recipient`); consumer `agent` holds the token of `token_sha256` and every capability."""
    (root / "secrets").mkdir(parents=True)
    (root / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: secrets/.*\\.sops\\.yaml$\n    age: {recipient}\n"
    )
    (root / "aivault-ops.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Project\nmetadata: {name: bench}\n"
        f"spec:\n  runtimeRecipients: [{recipient}]\n"
    )
    config = sops.SopsConfig.find(root / "secrets")
    per_credential = max(1, capabilities // secret_files)
    for index in range(secret_files):
        _credential(root, index, per_credential, config)
    grants = ", ".join(f'"api-{i}/*"' for i in range(secret_files))
    (root / "consumers.yaml").write_text(
        "apiVersion: aivault.dev/v1\nkind: Consumer\nmetadata: {name: agent}\n"
        f"spec:\n  tokenSha256: {token_sha256}\n  capabilities: [{grants}]\n"
    )


def _credential(root: Path, index: int, count: int, config: sops.SopsConfig | None) -> None:
    name = f"api-{index}"
    secret_file = root / "secrets" / f"{name}.sops.yaml"
    sops.set_value(secret_file, f"KEY_{index}", f"sk-bench-{index:05d}-{'x' * 24}", config, None)
    documents = _manifests(name, index, count)
    (root / f"{name}.yaml").write_text("---\n".join(documents))


def _manifests(name: str, index: int, count: int) -> list[str]:
    documents = [
        f"apiVersion: aivault.dev/v1\nkind: Provider\nmetadata: {{name: {name}}}\n"
        f"spec:\n  hosts: [{name}.example.com]\n"
        "  auth: {header: {header_name: authorization, value_template: 'Bearer {{secret}}'}}\n",
        f"apiVersion: aivault.dev/v1\nkind: Credential\nmetadata: {{name: {name}}}\n"
        f"spec:\n  provider: {name}\n  secretRef: secrets/{name}.sops.yaml#KEY_{index}\n",
    ]
    return documents + [
        f"apiVersion: aivault.dev/v1\nkind: Capability\nmetadata: {{name: {name}/cap-{c}}}\n"
        f"spec:\n  credential: {name}\n  allow:\n    methods: [GET, POST]\n"
        f"    pathPrefixes: [/v1/res-{c}]\n  policy: {{timeoutMs: 5000}}\n"
        for c in range(count)
    ]
