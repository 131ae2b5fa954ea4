"""`.sops.yaml`: found upward, path_regex relative to its directory, first match wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from sops_helpers import RECIPIENT_1, RECIPIENT_2, write_config

from aivault_ops.sops import ConfigError, SopsConfig

RULES = f"""\
  - path_regex: ^a/b/.*\\.yaml$
    age: >-
      {RECIPIENT_1},
      {RECIPIENT_2}
    unencrypted_suffix: _pub
    mac_only_encrypted: true
  - path_regex: \\.json$
    age:
      - {RECIPIENT_2}
  - path_regex: other/.*
    encrypted_regex: ^(password|token)$
    key_groups:
      - age: [{RECIPIENT_1}]
      - age: [{RECIPIENT_2}]
    shamir_threshold: 2
  - age: {RECIPIENT_1}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_config(tmp_path, RULES)
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


def test_found_by_searching_upward(project: Path) -> None:
    config = SopsConfig.find(project / "a" / "b")
    assert config is not None and config.path == (project / ".sops.yaml").resolve()


def test_none_when_no_config_exists(tmp_path: Path) -> None:
    (tmp_path / "deep").mkdir()
    found = SopsConfig.find(tmp_path / "deep")
    assert found is None or found.path.parent not in (tmp_path, tmp_path / "deep")


def test_path_regex_is_relative_to_the_config_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SopsConfig.find(project)
    assert config is not None
    rule = config.rule_for(project / "a" / "b" / "t.yaml")
    assert rule is not None and rule.index == 0
    assert rule.recipients == (RECIPIENT_1, RECIPIENT_2)
    assert (rule.rule.kind, rule.rule.value, rule.rule.mac_only_encrypted) == (
        "unencrypted_suffix",
        "_pub",
        True,
    )
    monkeypatch.chdir(project / "a")
    rule = config.rule_for(Path("b/t.yaml"))
    assert rule is not None and rule.index == 0


def test_first_matching_rule_wins_and_catch_all_last(project: Path) -> None:
    config = SopsConfig.find(project)
    assert config is not None
    names = ("x.json", "other/x.json", "other/x.yaml", "z.env")
    rules = [config.rule_for(project / name) for name in names]
    assert [rule.index if rule else None for rule in rules] == [1, 1, 2, 3]


def test_key_groups_and_threshold(project: Path) -> None:
    config = SopsConfig.find(project)
    assert config is not None
    rule = config.rule_for(project / "other" / "s.yaml")
    assert rule is not None
    assert rule.plan.groups == ((RECIPIENT_1,), (RECIPIENT_2,)) and rule.plan.shamir_threshold == 2
    assert (rule.rule.kind, rule.rule.value) == ("encrypted_regex", "^(password|token)$")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "no creation_rules"),
        ("  - path_regex: x\n", "creation_rules[0]: no age recipients"),
        (
            f"  - age: {RECIPIENT_1}\n    pgp: ABC\n",
            "creation_rules[0]: pgp keys are not supported; use age recipients",
        ),
        (
            f"  - age: {RECIPIENT_1}\n    encrypted_regex: a\n    unencrypted_suffix: b\n",
            "creation_rules[0]: cannot use more than one of unencrypted_suffix, encrypted_suffix, "
            "unencrypted_regex, encrypted_regex together",
        ),
        (
            f"  - age: {RECIPIENT_1}\n    path_regex: '('\n",
            "creation_rules[0]: missing ), unterminated subpattern at position 0",
        ),
        (
            f"  - key_groups: [{{age: [{RECIPIENT_1}]}}]\n    shamir_threshold: 3\n",
            "creation_rules[0]: shamir_threshold must be an integer from 1 to 1",
        ),
    ],
)
def test_invalid_configs_are_explained(tmp_path: Path, body: str, message: str) -> None:
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        SopsConfig.load(path)
    assert str(caught.value) == f"{path}: {message}"
