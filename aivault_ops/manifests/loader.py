"""Load a policy repo: discover files, render templates, parse, schema-check, type.

Every problem becomes a positioned diagnostic in the `Report`; loading never
stops at the first error, and a bad document is skipped, not fatal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aivault_ops import schema_check
from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests import templates
from aivault_ops.manifests.discovery import ProjectFiles, discover, is_template
from aivault_ops.manifests.model import (
    KINDS,
    CapabilityManifest,
    ConsumerManifest,
    CredentialManifest,
    Manifest,
    ManifestSource,
    Project,
    ProviderManifest,
    build_manifest,
)
from aivault_ops.manifests.yaml_positions import YamlDocument, YamlProblem, load_documents
from aivault_ops.suggest import did_you_mean

API_VERSION = "aivault.dev/v1"
PROJECT_FILE = "aivault-ops.yaml"


@dataclass(frozen=True)
class LoadedProject:
    """Everything read from a policy repo, typed; problems went to the report."""

    files: ProjectFiles
    environment: str | None
    project: Project | None = None
    projects: tuple[Project, ...] = ()
    providers: tuple[ProviderManifest, ...] = ()
    credentials: tuple[CredentialManifest, ...] = ()
    capabilities: tuple[CapabilityManifest, ...] = ()
    consumers: tuple[ConsumerManifest, ...] = ()
    sops_yaml_files: tuple[str, ...] = ()
    invalid_names: frozenset[tuple[str, str]] = frozenset()  # (kind, name) failing the schema

    @property
    def root(self) -> Path:
        return self.files.root


@dataclass
class _Collector:
    report: Report
    manifests: list[Manifest] = field(default_factory=list)
    sops_files: list[str] = field(default_factory=list)
    invalid_names: set[tuple[str, str]] = field(default_factory=set)


def load_project(root: Path, *, environment: str | None, report: Report) -> LoadedProject:
    """Read every manifest under `root`; templates are rendered after the Project is known."""
    files = discover(root)
    collector = _Collector(report)
    for relative in files.yaml_files:
        if not is_template(relative):
            _load_file(files, relative, collector, text=_read(files, relative, report))
    projects = sorted(
        (m for m in collector.manifests if isinstance(m, Project)), key=_project_file_first
    )
    values = _environment_values(projects, environment, report)
    for relative in files.yaml_files:
        if is_template(relative):
            _load_template(files, relative, collector, values)
    return _assemble(files, environment, collector)


def _assemble(files: ProjectFiles, environment: str | None, collector: _Collector) -> LoadedProject:
    def of(kind: type[Any]) -> tuple[Any, ...]:
        return tuple(m for m in collector.manifests if isinstance(m, kind))

    projects: tuple[Project, ...] = tuple(sorted(of(Project), key=_project_file_first))
    return LoadedProject(
        files=files,
        environment=environment,
        project=projects[0] if projects else None,
        projects=projects,
        providers=of(ProviderManifest),
        credentials=of(CredentialManifest),
        capabilities=of(CapabilityManifest),
        consumers=of(ConsumerManifest),
        sops_yaml_files=tuple(collector.sops_files),
        invalid_names=frozenset(collector.invalid_names),
    )


def _project_file_first(project: Project) -> bool:
    """The Project in aivault-ops.yaml is the one; any other is a duplicate."""
    return project.source.path != PROJECT_FILE


def _read(files: ProjectFiles, relative: str, report: Report) -> str | None:
    try:
        return files.absolute(relative).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        report.add(Location(relative), "E-FILE-READ", "file is not UTF-8 text")
    except OSError as error:
        report.add(Location(relative), "E-FILE-READ", f"cannot read file: {error.strerror}")
    return None


def _environment_values(
    projects: list[Project], environment: str | None, report: Report
) -> Mapping[str, Any]:
    if environment is None:
        return {}
    if not projects:
        return {"environment": environment}
    project = projects[0]
    if environment not in project.environments:
        known = ", ".join(sorted(project.environments)) or "none defined"
        report.add(
            project.source.at("spec", "environments"),
            "E-ENV-UNKNOWN",
            f"environment '{environment}' is not defined in spec.environments"
            f"{did_you_mean(environment, project.environments)} (known: {known})",
        )
        return {"environment": environment}
    return {**project.environments[environment], "environment": environment}


def _load_template(
    files: ProjectFiles, relative: str, collector: _Collector, values: Mapping[str, Any]
) -> None:
    text = _read(files, relative, collector.report)
    if text is None:
        return
    try:
        rendered = templates.render(text, name=relative, values=values)
    except templates.TemplateProblem as problem:
        collector.report.add(Location(relative, problem.line, 1), "E-TEMPLATE", problem.message)
        return
    _load_file(files, relative, collector, text=rendered)


def _load_file(
    files: ProjectFiles, relative: str, collector: _Collector, *, text: str | None
) -> None:
    if text is None:
        return
    try:
        documents = list(load_documents(text))
    except YamlProblem as problem:
        location = Location(relative, problem.line, problem.column)
        collector.report.add(location, problem.code, problem.message)
        return
    if documents and _is_sops(documents[0].data):
        collector.sops_files.append(relative)
        return
    for document in documents:
        _load_document(relative, document, collector)


def _is_sops(data: object) -> bool:
    return isinstance(data, dict) and isinstance(data.get("sops"), dict)


def _load_document(relative: str, document: YamlDocument, collector: _Collector) -> None:
    source = ManifestSource(relative, document.positions)
    data = document.data
    if data is None:
        return  # an empty document (a stray `---`) is allowed
    report = collector.report
    if not isinstance(data, dict):
        report.add(source.at(), "E-YAML-NOT-MAPPING", "a manifest must be a YAML mapping")
        return
    kind = data.get("kind")
    if data.get("apiVersion") != API_VERSION:
        report.add(source.at("apiVersion"), "E-API-VERSION", f"apiVersion must be '{API_VERSION}'")
        return
    if kind not in KINDS:
        report.add(source.at("kind"), "E-KIND-UNKNOWN", f"kind must be one of: {', '.join(KINDS)}")
        return
    errors = schema_check.check(f"manifest-{kind.lower()}", data)
    for error in errors:
        location = source.at_key(*error.path) if error.at_key else source.at(*error.path)
        report.add(location, error.code, error.message)
    if not errors:
        collector.manifests.append(build_manifest(kind, data, source))
        return
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    if isinstance(name, str):
        collector.invalid_names.add((kind, name))
