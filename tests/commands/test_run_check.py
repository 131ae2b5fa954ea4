"""`run_check` in-process on a copy of vault.d and on a bundle compiled from it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from policy_repo_support import VaultCopy, vault_copy

from aivault_ops.commands.check import run_check
from aivault_ops.commands.compile import run_compile
from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.main import main

DEMO_TOKEN = "avt_demo_research_agent_DO_NOT_USE_IN_PRODUCTION"


@pytest.fixture
def vault(tmp_path: Path) -> VaultCopy:
    return vault_copy(tmp_path)


def check(vault: VaultCopy, **options: Any) -> int:
    defaults: dict[str, Any] = {
        "repo": vault.root,
        "bundle": None,
        "trust": [],
        "environment": None,
        "consumer": "research-agent",
        "token_sha256": None,
        "capability": None,
        "credential": None,
        "method": "GET",
        "path": "/v1/users/7",
    }
    return run_check(**{**defaults, **options})


def test_allow_prints_the_rule_and_exits_0(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(vault, capability="example-api/users", path="/v1/users/7?fields=name") == 0
    assert capsys.readouterr().out.splitlines() == [
        "allow: consumer research-agent: GET /v1/users/7?fields=name on example-api/users",
        "  capability: example-api/users (named by the caller)",
        "  prefix:     /v1/users",
        "  credential: example-api -> https://api.example.com",
        "  injects:    header authorization",
    ]


def test_deny_prints_the_runtime_error_and_exits_1(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(vault, capability="example-api/users", method="DELETE") == 1
    out = capsys.readouterr().out
    assert out.startswith(
        "deny: consumer research-agent: DELETE /v1/users/7 on example-api/users\n"
    )
    assert "  refused:    405 E-METHOD-NOT-ALLOWED: method 'DELETE' is not allowed" in out


def test_passthrough_says_which_capability_the_runtime_picks(
    vault: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(vault, credential="example-api", path="/v1/health", as_json=True) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["capability"] == "example-api/health"
    assert decision["capabilityPickedBy"].startswith("longest matching prefix")


def test_by_token_hash_and_from_a_signed_bundle(
    vault: VaultCopy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle-1.tar.gz"
    assert run_compile(
        repo=vault.root, out=bundle, signing_key=vault.signing_key, environment=None, serial=1,
        revision="r1",
    ) == 0  # fmt: skip
    capsys.readouterr()
    digest = hashlib.sha256(DEMO_TOKEN.encode()).hexdigest()
    code = check(
        vault, repo=None, bundle=bundle, trust=[vault.public_key], consumer=None,
        token_sha256=digest, capability="openai/models", path="/v1/models", as_json=True,
    )  # fmt: skip
    decision = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (decision["consumer"], decision["error"]) == ("research-agent", "E-FORBIDDEN")
    assert decision["policy"] == f"{bundle} (serial 1)"
    unknown = {"bundle": bundle, "trust": [vault.public_key], "token_sha256": "0" * 64}
    assert check(vault, **unknown, capability="openai/models") == 1
    assert "(unknown token)" in capsys.readouterr().out


def test_a_bundle_needs_a_trusted_key(vault: VaultCopy, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--trust"):
        check(vault, bundle=tmp_path / "b.tar.gz", capability="x")


def test_usage_errors_exit_2(vault: VaultCopy, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["check", str(vault.root), "--capability", "example-api/users", "--method", "GET"]
    assert main([*base, "--consumer", "research-agnt", "--path", "/v1/users"]) == 2
    assert "did you mean 'research-agent'" in capsys.readouterr().err
    assert main([*base, "--consumer", "research-agent", "--path", "v1/users"]) == 2
    header = ["--header", "Authorization=Bearer abc"]
    assert main([*base, "--consumer", "research-agent", "--path", "/v1/users", *header]) == 2
    assert main([*base, "--consumer", "research-agent", "--path", "/", "--header", "bad"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["check", "--method", "GET", "--path", "/"])
    assert exited.value.code == 2


def test_headers_reach_the_decision(vault: VaultCopy, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", str(vault.root), "--consumer", "research-agent", "--capability",
            "example-api/users", "--method", "GET", "--path", "/v1/users"]  # fmt: skip
    assert main([*argv, "--header", "X-Trace: 1"]) == 0
    assert main([*argv, "--header", "X-Forwarded-Host=evil.example"]) == 1
    assert "E-HEADER-FORBIDDEN" in capsys.readouterr().out


def test_a_bundle_that_does_not_verify_is_refused(vault: VaultCopy, tmp_path: Path) -> None:
    forged = tmp_path / "bundle-9.tar.gz"
    forged.write_bytes(b"not a bundle")
    with pytest.raises(AivaultError, match=r"bundle-9\.tar\.gz: E-"):
        check(vault, bundle=forged, trust=[vault.public_key], capability="example-api/users")
