"""The systemd unit and the Kubernetes Deployment start `serve` with options that exist."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from aivault_ops.main import build_parser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def serve_args(args: list[str]) -> Any:
    parsed = build_parser().parse_args(args)
    assert parsed.command == "serve"
    return parsed


def test_the_systemd_unit_runs_serve_from_a_registry() -> None:
    text = (EXAMPLES / "runtime" / "aivault-ops.service").read_text()
    start = text.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0].replace("\\\n", " ")
    words = shlex.split(start)
    assert words[0] == "/usr/local/bin/aivault-ops"
    args = serve_args(words[1:])
    assert args.bundle_source == "oci://ghcr.io/acme/aivault-policy:latest"
    assert args.bundle_dir is None and not args.plain_http
    assert args.rate_limit_store == "rediss://redis.internal:6380/0"
    assert "EnvironmentFile=/etc/aivault-ops/env" in text


def test_the_kubernetes_deployment_reads_identity_and_trust_from_a_secret() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "aivault-ops.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = serve_args(container["args"])
    assert args.bundle_source.startswith("oci://") and args.bundle_dir is None
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secret = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]["secretName"]
    assert secret == "aivault-ops-runtime"
    assert str(args.identity).startswith(mounts["secrets"])
    assert args.trust[0].startswith(mounts["secrets"])
    assert str(args.state_dir).startswith(mounts["state"] + "/")
    env = {e["name"]: e for e in container["env"]}
    assert env["AIVAULT_OPS_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == secret
    assert env["AIVAULT_OPS_REGISTRY_PASSWORD_FILE"]["value"].startswith(mounts["secrets"])
