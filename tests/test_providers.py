"""The built-in registry: schema-valid, complete, consistent, and shipped in the wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from aivault_ops import schema_check
from aivault_ops.diagnostics import Report
from aivault_ops.manifests.model import ManifestSource
from aivault_ops.manifests.yaml_positions import Positions
from aivault_ops.providers import REGISTRY_DIR, builtin_registry, registry_files
from aivault_ops.resolve.hosts import covered
from aivault_ops.resolve.templates import check_auth_templates

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO / "schemas"
FILES = registry_files()


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_registry_file_passes_the_registry_schema(path: Path) -> None:
    schema = json.loads((SCHEMA_DIR / "registry-provider.schema.json").read_text())
    errors = sorted(
        Draft202012Validator(schema).iter_errors(_load(path)), key=lambda e: list(e.path)
    )
    assert [e.message for e in errors] == []
    assert schema_check.check("registry-provider", _load(path)) == []


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_registry_file_is_consistent(path: Path) -> None:
    data = _load(path)
    provider = data["provider"]
    assert provider == path.stem
    all_hosts = [*data["hosts"]]
    for alternative in data.get("credentialAlternatives", ()):
        all_hosts.extend(alternative["hosts"])
    ids = [c["id"] for c in data["capabilities"]]
    assert len(ids) == len(set(ids))
    for capability in data["capabilities"]:
        assert capability["provider"] == provider
        assert capability["id"].startswith(f"{provider}/")
        assert all(covered(h, all_hosts) for h in capability["allow"]["hosts"]), capability["id"]
        assert all(p.startswith("/") for p in capability["allow"]["pathPrefixes"])
    for alternative in data.get("credentialAlternatives", ()):
        assert set(alternative.get("capabilities", ())) <= set(ids)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_registry_auth_templates_parse_in_the_sandbox(path: Path) -> None:
    data = _load(path)
    source = ManifestSource(path.name, Positions())
    report = Report()
    variants = [data["auth"], *(a["auth"] for a in data.get("credentialAlternatives", ()))]
    for auth in variants:
        assert check_auth_templates(auth, source, ("auth",), report)
    assert list(report) == []


def test_the_registry_has_44_providers_and_283_capabilities() -> None:
    registry = builtin_registry()
    assert len(FILES) == 44
    assert len(registry.providers) == 44
    assert sum(len(p.capabilities) for p in registry.providers.values()) == 283
    assert sum(len(_load(path)["capabilities"]) for path in FILES) == 283


def test_every_canonical_secret_name_has_one_owner() -> None:
    registry = builtin_registry()
    owners: dict[str, set[str]] = {}
    for path in FILES:
        data = _load(path)
        variants = [data, *data.get("credentialAlternatives", ())]
        for variant in variants:
            for name in variant.get("vaultSecrets") or {}:
                owners.setdefault(name, set()).add(data["provider"])
    assert {name: len(providers) for name, providers in owners.items() if len(providers) > 1} == {}
    assert dict(registry.secret_owners) == {n: p.pop() for n, p in owners.items()}
    assert registry.secret_owners["OPENAI_API_KEY"] == "openai"
    assert registry.secret_owners["CODEX_OAUTH_JSON"] == "openai"


def test_openai_alternatives_are_modelled() -> None:
    openai = builtin_registry().providers["openai"]
    assert openai.source == "registry"
    assert openai.default.hosts == ("api.openai.com",)
    assert dict(openai.default.vault_secrets) == {"OPENAI_API_KEY": "secret"}
    codex = openai.variant("codex-oauth")
    assert codex is not None
    assert (codex.hosts, codex.capabilities, codex.upstream_path_prefix) == (
        ("chatgpt.com",),
        ("openai/codex-responses", "openai/codex-realtime"),
        "/backend-api/codex",
    )
    assert openai.variant("nope") is None
    assert openai.variant(None) is openai.default
    assert openai.hosts == ("api.openai.com", "chatgpt.com")


def test_the_registry_is_found_inside_the_package() -> None:
    import aivault_ops

    assert Path(aivault_ops.__file__).resolve().parent / "registry" == REGISTRY_DIR
    assert (REGISTRY_DIR / "openai.json").is_file()
    assert Path(aivault_ops.__file__).resolve().parent / "schemas" == schema_check.SCHEMA_DIR


def test_notice_credits_the_source() -> None:
    notice = (REGISTRY_DIR / "NOTICE").read_text(encoding="utf-8")
    assert "aivault" in notice
    assert "Apache License, Version 2.0" in notice
    assert (REGISTRY_DIR / "LICENSE.aivault").is_file()


def _schema_files() -> Iterator[Path]:
    yield from sorted(SCHEMA_DIR.glob("*.schema.json"))


@pytest.mark.parametrize("path", list(_schema_files()), ids=lambda p: p.name)
def test_every_schema_is_a_valid_2020_12_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/schemas/{path.name}")
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    "name",
    [
        "manifest-project",
        "manifest-provider",
        "manifest-credential",
        "manifest-capability",
        "manifest-consumer",
        "policy",
        "registry-provider",
    ],
)
def test_manifest_and_policy_schemas_resolve_their_references(name: str) -> None:
    """Every `$ref` across schema files resolves (a broken one raises while validating)."""
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    assert schema["$id"] == f"https://aivault-ops.dev/schemas/{name}.schema.json"
    validator = schema_check.validator(name)
    validator.check_schema(validator.schema)
    list(validator.iter_errors({"apiVersion": "aivault.dev/v1", "spec": {"allow": {}}}))


def test_every_manifest_kind_and_the_policy_have_a_schema() -> None:
    names = {p.name for p in _schema_files()}
    assert {
        "manifest-project.schema.json",
        "manifest-provider.schema.json",
        "manifest-credential.schema.json",
        "manifest-capability.schema.json",
        "manifest-consumer.schema.json",
        "policy.schema.json",
        "registry-provider.schema.json",
        "bundle-manifest.schema.json",
    } <= names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built by pip from a copy of this checkout (the shared tree stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("aivault_ops", "registry", "schemas"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy(REPO / name, source / name)
    out = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("aivault_ops-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_ships_the_registry_and_schemas(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "aivault_ops/registry/openai.json" in names
    assert "aivault_ops/schemas/policy.schema.json" in names
    assert "aivault_ops/registry/NOTICE" in names
    assert "aivault_ops/py.typed" in names
    assert {f"aivault_ops/registry/{p.name}" for p in FILES} <= names
    assert {f"aivault_ops/schemas/{p.name}" for p in _schema_files()} <= names
    shipped = json.loads(wheel.read("aivault_ops/registry/openai.json"))
    assert shipped == _load(REGISTRY_DIR / "openai.json")


def test_the_wheel_ships_the_registry_license(wheel: zipfile.ZipFile) -> None:
    assert "aivault_ops/registry/LICENSE.aivault" in wheel.namelist()
