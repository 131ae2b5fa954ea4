"""`invoke CAP` without `--path`: the capability's one path prefix from the policy repo."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import InitProject

from aivault_ops.commands._invoke_path import only_path_prefix
from aivault_ops.errors import UsageError


def test_a_manifest_capability_with_one_prefix(project: InitProject) -> None:
    assert only_path_prefix("example-api/read", project.root) == "/v1/"


def test_several_prefixes_are_listed(project: InitProject) -> None:
    path = project.root / "capabilities" / "example-api.yaml"
    path.write_text(path.read_text().replace("[/v1/]", "[/v1/, /v2/]"))
    with pytest.raises(UsageError, match=r"several path prefixes \(/v1/, /v2/\): pass --path"):
        only_path_prefix("example-api/read", project.root)


def test_a_registry_capability_of_one_prefix(project: InitProject) -> None:
    assert only_path_prefix("linear/graphql", project.root) == "/graphql"


def test_unknown_capability_or_no_repo_keeps_the_old_default(
    project: InitProject, tmp_path: Path
) -> None:
    assert only_path_prefix("nope/x", project.root) == "/"
    (tmp_path / "empty").mkdir()
    assert only_path_prefix("example-api/read", tmp_path / "empty") == "/"
