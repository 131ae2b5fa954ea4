"""`run_list` and `run_describe` of `capabilities`, called in-process on each source."""

from __future__ import annotations

import json

import pytest
from cli_support import InitProject
from repo_support import repo

from aivault_ops.commands.capabilities import Source, run_describe, run_list
from aivault_ops.commands.compile import run_compile
from aivault_ops.errors import AivaultError, UsageError

__all__ = ["repo"]


def test_the_project_is_the_default_source(
    repo: InitProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.workdir)
    assert run_list(source=Source()) == 0
    assert capsys.readouterr().out == "example-api/read  [example-api]  GET /v1/\n"
    assert run_describe(name="example-api/read", source=Source()) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "  policy: (none)",
        "  auth: header",
        "  secrets: secrets/example-api.sops.yaml#EXAMPLE_API_KEY",
    ]


def test_a_bundle_is_read_only_after_verification(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = repo.workdir / "b.tar.gz"
    code = run_compile(
        repo=repo.root, out=bundle, signing_key=repo.signing_key, environment=None, serial=1
    )
    assert code == 0
    with pytest.raises(UsageError, match="--bundle needs --trust PUB"):
        run_list(source=Source(bundle=bundle))
    capsys.readouterr()
    source = Source(bundle=bundle, trust=[repo.public_key])
    assert run_describe(name="example-api/read", source=source, as_json=True) == 0
    described = json.loads(capsys.readouterr().out)["example-api/read"]
    assert (described["auth"], described["methods"]) == ("header", ["GET"])


def test_the_registry_lists_and_describes_built_in_capabilities(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_list(source=Source(registry=True), as_json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["openai/chat-completions"]["provider"] == "openai"
    assert run_list(source=Source(registry=True)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(listed)
    assert "openai/chat-completions  [openai]  GET,POST /v1/chat/completions" in lines
    assert run_describe(name="openai/chat-completions", source=Source(registry=True)) == 0
    text = capsys.readouterr().out
    assert text.startswith("capability: openai/chat-completions\n  provider: openai\n")
    assert "  secretNames: OPENAI_API_KEY\n" in text


def test_an_unknown_name_suggests_the_nearest(repo: InitProject) -> None:
    with pytest.raises(AivaultError) as caught:
        run_describe(name="example-api/reed", source=Source(repo=repo.root))
    assert (
        caught.value.message
        == "no capability 'example-api/reed' (did you mean 'example-api/read'?)"
    )
    assert caught.value.hint is not None and "capabilities list" in caught.value.hint
