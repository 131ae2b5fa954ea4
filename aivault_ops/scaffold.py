"""The files of a new policy repo (`aivault-ops init`): pure text, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER_VALUE = "replace-me"
"""The value `init` gives the example secret; `secrets list` warns while a secret still holds it."""


@dataclass(frozen=True)
class ScaffoldInput:
    project: str
    recipient: str
    signing_public_key: str | None
    token_sha256: str


def scaffold_files(given: ScaffoldInput) -> dict[str, str]:
    """Project-relative path → content of every manifest `init` writes."""
    trusted = (
        f"\n  trustedSigningKeys:\n    - {given.signing_public_key}"
        if given.signing_public_key
        else ""
    )
    return {
        "aivault-ops.yaml": f"""\
apiVersion: aivault.dev/v1
kind: Project
metadata:
  name: {given.project}
spec:
  # Every secret file must be encrypted to these age recipients (the runtimes' keys).
  runtimeRecipients:
    - {given.recipient}{trusted}
""",
        ".sops.yaml": f"""\
creation_rules:
  - path_regex: secrets/.*\\.sops\\.(yaml|json|env)$
    age: {given.recipient}
""",
        "providers/example-api.yaml": """\
# A custom provider. Registry providers (openai, stripe, github, …) need no
# Provider manifest: see `aivault-ops capabilities list --registry`.
apiVersion: aivault.dev/v1
kind: Provider
metadata:
  name: example-api
spec:
  hosts: [api.example.com]
  auth:
    header:
      header_name: authorization
      value_template: "Bearer {{secret}}"
""",
        "credentials/example-api.yaml": """\
apiVersion: aivault.dev/v1
kind: Credential
metadata:
  name: example-api
spec:
  provider: example-api
  secretRef: secrets/example-api.sops.yaml#EXAMPLE_API_KEY
""",
        "capabilities/example-api.yaml": """\
apiVersion: aivault.dev/v1
kind: Capability
metadata:
  name: example-api/read
spec:
  credential: example-api
  allow:
    methods: [GET]
    pathPrefixes: [/v1/]
""",
        "consumers/agent.yaml": f"""\
# Only the sha256 of the consumer's token is committed, never the token.
apiVersion: aivault.dev/v1
kind: Consumer
metadata:
  name: agent
spec:
  tokenSha256: {given.token_sha256}
  capabilities: ["example-api/*"]
""",
    }
