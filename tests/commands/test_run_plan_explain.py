"""`plan --explain` against a bundle directory published from a copy of vault.d."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from policy_repo_support import VaultCopy, vault_copy

from aivault_ops.commands.apply import run_apply
from aivault_ops.commands.plan import EXIT_CHANGES, run_plan


@pytest.fixture
def published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> VaultCopy:
    vault = vault_copy(tmp_path)
    target = tmp_path / "bundles"
    assert run_apply(
        repo=vault.root, target=target, signing_key=vault.signing_key, environment=None,
        trust=[vault.public_key], revision="r1",
    ) == 0  # fmt: skip
    capsys.readouterr()
    return vault


def plan(vault: VaultCopy, *, as_json: bool = False) -> int:
    return run_plan(
        repo=vault.root,
        target=vault.root.parent / "bundles",
        environment=None,
        trust=[vault.public_key],
        as_json=as_json,
        explain=True,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_explain_names_the_requests_whose_verdict_flips(
    published: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(published.root / "capabilities/example-api.yaml", "[GET, POST]", "[GET, POST, DELETE]")
    assert plan(published) == EXIT_CHANGES
    out = capsys.readouterr().out
    assert "Decisions that change (2):\n" in out
    assert (
        "  consumer research-agent: DELETE /v1/users/7 on example-api/users: deny -> allow"
        " (was E-METHOD-NOT-ALLOWED)  [test]\n"
    ) in out
    assert "DELETE /v1/users on example-api/users: deny -> allow" in out


def test_explain_in_json_and_without_changes(
    published: VaultCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan(published) == 0
    assert "Decisions: no tested or probed request changes its verdict" in capsys.readouterr().out
    edit(
        published.root / "consumers/research-agent.yaml",
        '"openai/chat-completions"]',
        '"openai/*"]',
    )
    assert plan(published, as_json=True) == EXIT_CHANGES
    flips = json.loads(capsys.readouterr().out)["explain"]
    assert {(f["request"], f["before"]["decision"], f["after"]["decision"]) for f in flips} >= {
        ("GET /v1/models on openai/models", "deny", "allow"),
        ("POST /v1/embeddings on openai/embeddings", "deny", "allow"),
    }
