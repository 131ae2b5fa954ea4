"""aivault's registry rules, one by one, on a valid provider file changed in one place."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aivault_ops.providers import registry_files
from aivault_ops.registry_files import read_provider_file
from aivault_ops.registry_lint import ProviderFile, lint

VALID: dict[str, Any] = {
    "$schema": "../schemas/registry-provider.schema.json",
    "provider": "acme",
    "vaultSecrets": {"ACME_API_KEY": "secret"},
    "auth": {"header": {"header_name": "authorization", "value_template": "Bearer {{secret}}"}},
    "hosts": ["api.acme.example.com", "upload.acme.example.com"],
    "capabilities": [
        {
            "id": "acme/orders",
            "provider": "acme",
            "allow": {
                "hosts": ["api.acme.example.com"],
                "methods": ["GET"],
                "pathPrefixes": ["/v1/orders"],
            },
        },
        {
            "id": "acme/users",
            "provider": "acme",
            "allow": {
                "hosts": ["api.acme.example.com"],
                "methods": ["GET", "POST"],
                "pathPrefixes": ["/v1/admins", "/v1/users"],
            },
        },
    ],
}


def _file(tmp_path: Path, data: Any, name: str = "acme.json") -> ProviderFile:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    read = read_provider_file(path, f"registry/{name}")
    assert isinstance(read, ProviderFile)
    return read


def _changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    change(data)
    return data


def test_the_valid_file_passes(tmp_path: Path) -> None:
    assert lint([_file(tmp_path, VALID)]) == []


def test_every_built_in_provider_file_passes() -> None:
    files = []
    for path in registry_files():
        read = read_provider_file(path, f"registry/{path.name}")
        assert isinstance(read, ProviderFile), read
        files.append(read)
    assert len(files) > 40
    assert [str(d) for d in lint(files)] == []


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


CASES = {
    "schema-ref": (_set(("$schema",), "./registry.schema.json"), "E-REGISTRY-SCHEMA-REF"),
    "hosts-unsorted": (
        _set(("hosts",), ["upload.acme.example.com", "api.acme.example.com"]),
        "E-REGISTRY-UNSORTED",
    ),
    "methods-unsorted": (
        _set(("capabilities", 1, "allow", "methods"), ["POST", "GET"]),
        "E-REGISTRY-UNSORTED",
    ),
    "prefixes-unsorted": (
        _set(("capabilities", 1, "allow", "pathPrefixes"), ["/v1/users", "/v1/admins"]),
        "E-REGISTRY-UNSORTED",
    ),
    "capabilities-unsorted": (
        lambda data: data["capabilities"].reverse(),
        "E-REGISTRY-UNSORTED",
    ),
    "capability-provider": (
        _set(("capabilities", 0, "provider"), "other"),
        "E-REGISTRY-CAPABILITY-PROVIDER",
    ),
    "host-not-public": (
        _set(("hosts",), ["127.0.0.1", "api.acme.example.com"]),
        "E-HOST-NOT-PUBLIC",
    ),
    "wildcard-too-broad": (
        _set(("capabilities", 0, "allow", "hosts"), ["*.com"]),
        "E-HOST-PATTERN",
    ),
    "two-strategies": (
        _set(("auth",), {"header": VALID["auth"]["header"], "query": {"param_name": "k"}}),
        "E-REGISTRY-AUTH",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_is_caught(tmp_path: Path, case: str) -> None:
    change, code = CASES[case]
    codes = {d.code for d in lint([_file(tmp_path, _changed(change))])}
    assert code in codes


def test_empty_list_is_caught_even_where_the_schema_allows_it(tmp_path: Path) -> None:
    data = _changed(_set(("capabilities", 0, "allow", "pathPrefixes"), []))
    found = lint([_file(tmp_path, data)])
    assert any(d.code in {"E-REGISTRY-EMPTY", "E-SCHEMA-INVALID"} for d in found)


def test_file_name_must_be_the_provider(tmp_path: Path) -> None:
    [problem] = lint([_file(tmp_path, VALID, name="acme-corp.json")])
    assert (problem.code, str(problem.location)) == (
        "E-REGISTRY-FILE-NAME",
        "registry/acme-corp.json:3:15",
    )


def test_provider_and_capability_ids_are_unique_across_files(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    found = lint([_file(first, VALID), _file(second, VALID)])
    codes = sorted(d.code for d in found)
    assert codes == [
        "E-REGISTRY-DUPLICATE-CAPABILITY",
        "E-REGISTRY-DUPLICATE-CAPABILITY",
        "E-REGISTRY-DUPLICATE-PROVIDER",
    ]


def test_a_file_that_is_not_json_is_one_diagnostic_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    path.write_text('{\n  "provider": "acme",\n  oops\n}\n', encoding="utf-8")
    problem = read_provider_file(path, "registry/acme.json")
    assert not isinstance(problem, ProviderFile)
    assert str(problem).startswith("registry/acme.json:3:3: E-REGISTRY-JSON: not valid JSON")
