"""`run_plan` called in-process against a real repo and bundle directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import InitProject
from repo_support import init_repo, repo

from aivault_ops.commands.apply import run_apply
from aivault_ops.commands.compile import run_compile
from aivault_ops.commands.keys import run_signing
from aivault_ops.commands.plan import EXIT_CHANGES, run_plan

__all__ = ["repo"]


def publish(repo: InitProject, revision: str = "r1") -> None:
    """`apply` the repo into `workdir/bundles`."""
    target = repo.workdir / "bundles"
    code = run_apply(
        repo=repo.root,
        target=target,
        signing_key=repo.signing_key,
        environment=None,
        revision=revision,
    )
    assert code == 0


def publish_foreign(repo: InitProject, serial: int) -> None:
    """A bundle of the same repo signed by a key nobody trusts, as `bundle-<serial>`."""
    other = repo.workdir / "keys" / f"other-{serial}.pem"
    assert run_signing(out=other) == 0
    (repo.workdir / "bundles").mkdir(exist_ok=True)
    out = repo.workdir / "bundles" / f"bundle-{serial}.tar.gz"
    code = run_compile(
        repo=repo.root,
        out=out,
        signing_key=other,
        environment=None,
        serial=serial,
        revision="rogue",
    )
    assert code == 0


def plan(repo: InitProject, *, trust: tuple[str, ...] = (), as_json: bool = False) -> int:
    return run_plan(
        repo=repo.root,
        target=repo.workdir / "bundles",
        environment=None,
        trust=trust,
        as_json=as_json,
    )


def test_against_an_empty_target_every_object_is_an_addition(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan(repo) == EXIT_CHANGES
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "Comparing against: nothing published yet",
        "+ provider example-api",
        "+ credential example-api",
        "+ capability example-api/read",
        "+ consumer agent",
        "+ secret secrets/example-api.sops.yaml",
        "Plan: 5 to add, 0 to change, 0 to remove.",
    ]
    assert err == ""


def test_after_apply_there_is_nothing_to_change(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo)
    capsys.readouterr()
    assert plan(repo, trust=(repo.public_key,)) == 0
    assert capsys.readouterr() == (
        "Comparing against: bundle-1.tar.gz (revision r1)\nNo changes.\n",
        "",
    )


def test_json_names_the_base_and_each_change(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo)
    capability = repo.root / "capabilities" / "example-api.yaml"
    capability.write_text(capability.read_text().replace("[GET]", "[GET, POST]"))
    capsys.readouterr()
    assert plan(repo, as_json=True) == EXIT_CHANGES
    assert json.loads(capsys.readouterr().out) == {
        "base": {"bundle": "bundle-1.tar.gz", "serial": 1, "revision": "r1", "verified": True},
        "changes": [
            {
                "op": "~",
                "kind": "capability",
                "name": "example-api/read",
                "fields": [{"field": "allow.methods", "old": ["GET"], "new": ["GET", "POST"]}],
            }
        ],
    }


def test_a_newer_bundle_nobody_trusts_is_reported_and_passed_over(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(repo)
    publish_foreign(repo, 2)
    capsys.readouterr()
    assert plan(repo) == EXIT_CHANGES  # no change in the policy, but a bundle to publish above
    out, err = capsys.readouterr()
    assert out == "Comparing against: bundle-1.tar.gz (revision r1)\nNo changes.\n"
    assert err.startswith(
        "warning: bundle-2.tar.gz does not verify with the trusted keys (E-BUNDLE-UNTRUSTED: "
    )
    assert plan(repo, as_json=True) == EXIT_CHANGES
    document = json.loads(capsys.readouterr().out)
    assert document["base"]["bundle"] == "bundle-1.tar.gz"
    assert [entry["bundle"] for entry in document["unverifiable"]] == ["bundle-2.tar.gz"]
    assert document["unverifiable"][0]["reason"].startswith("E-BUNDLE-UNTRUSTED: ")


def test_when_no_bundle_verifies_the_plan_compares_against_nothing_verified(
    repo: InitProject, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_foreign(repo, 4)
    capsys.readouterr()
    assert plan(repo) == EXIT_CHANGES
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Comparing against: nothing verified published yet"


def test_with_no_trusted_key_at_all_the_base_is_read_unverified_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    untrusting = init_repo(tmp_path, signing=False)  # a Project with no trustedSigningKeys
    assert run_signing(out=tmp_path / "keys" / "sk.pem") == 0
    publish(untrusting, revision="r7")
    capsys.readouterr()
    assert plan(untrusting) == 0
    out, err = capsys.readouterr()
    assert out == "Comparing against: bundle-1.tar.gz (revision r7)\nNo changes.\n"
    assert err.startswith("warning: the newest bundle could not be verified (E-BUNDLE-UNTRUSTED")
    assert err.endswith("; comparing against its unverified content\n")
    assert plan(untrusting, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["base"]["verified"] is False
