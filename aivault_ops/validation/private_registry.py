"""A policy repo's own `registry/` folder: providers with built-in guarantees.

Provider files there follow the built-in registry's schema and rules
(`registry_lint`) and become registry providers: their secret names are
pinned to them, their hosts and auth are fixed by the file, and their
capabilities are provisioned like a built-in provider's. A file may replace
a built-in provider of the same name only when the Project manifest lists
that name in `spec.registryOverrides`.
"""

from __future__ import annotations

from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.loader import LoadedProject
from aivault_ops.providers import Registry, provider_from_registry_json
from aivault_ops.registry_files import read_provider_file, repo_registry_files
from aivault_ops.registry_lint import ProviderFile, lint


def project_registry(loaded: LoadedProject, builtin: Registry, report: Report) -> Registry:
    """`builtin` plus every lint-clean provider file of the repo's `registry/`."""
    paths = repo_registry_files(loaded.root)
    if not paths:
        return builtin
    files: list[ProviderFile] = []
    for path in paths:
        read = read_provider_file(path, path.relative_to(loaded.root).as_posix())
        if isinstance(read, ProviderFile):
            files.append(read)
        else:
            report.add(read.location, read.code, read.message)
    problems = lint(files)
    report.extend(problems)
    broken = {problem.location.path for problem in problems}
    overrides = set(loaded.project.registry_overrides) if loaded.project else set()
    usable = [
        f for f in files if f.path not in broken and _not_clashing(f, builtin, overrides, report)
    ]
    replaced = {file.data["provider"] for file in usable}
    kept = Registry.from_providers(
        [p for p in builtin.providers.values() if p.name not in replaced]
    )
    private = [
        provider_from_registry_json(file.data)
        for file in usable
        if _claims_nothing_of(file, kept, report)
    ]
    return Registry.from_providers([*kept.providers.values(), *private])


def _not_clashing(
    file: ProviderFile, builtin: Registry, overrides: set[str], report: Report
) -> bool:
    name = file.data["provider"]
    if name in builtin.providers and name not in overrides:
        report.add(
            _at(file, ("provider",)),
            "E-REGISTRY-PROVIDER-CLASH",
            f"{name!r} is a built-in registry provider; rename it, or list it in the"
            " Project's spec.registryOverrides to replace the built-in one",
        )
        return False
    return True


def _claims_nothing_of(file: ProviderFile, kept: Registry, report: Report) -> bool:
    """Refuse a file claiming a built-in provider's secret names or capability ids."""
    spec = provider_from_registry_json(file.data)
    ok = True
    for variant_index, variant in enumerate((spec.default, *spec.alternatives)):
        for secret_name in variant.vault_secrets:
            owner = kept.secret_owners.get(secret_name)
            if owner is not None:
                where = ("vaultSecrets",) if variant_index == 0 else ("credentialAlternatives",)
                report.add(
                    _at(file, where),
                    "E-SECRET-PINNED",
                    f"secret name {secret_name} is pinned to registry provider '{owner}'",
                )
                ok = False
    taken = {cap.name for p in kept.providers.values() for cap in p.capabilities}
    for index, capability in enumerate(spec.capabilities):
        if capability.name in taken:
            report.add(
                _at(file, ("capabilities", index, "id")),
                "E-REGISTRY-DUPLICATE-CAPABILITY",
                f"capability id {capability.name!r} belongs to a built-in provider",
            )
            ok = False
    return ok


def _at(file: ProviderFile, path: tuple[str | int, ...]) -> Location:
    line, column = file.positions.of(path)
    return Location(file.path, line, column)
