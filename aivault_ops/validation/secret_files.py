"""Secret-file hygiene, read from SOPS metadata alone (no private key).

Every secret file must be a SOPS file, every value that should be encrypted
must be (a plaintext value slipped into a SOPS file is caught here), the file
must be encrypted to every runtime recipient, and a `.sops.yaml` creation
rule must cover it so that later edits keep the right recipients.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aivault_ops import sops
from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.discovery import SOPS_CONFIG as CONFIG_NAME
from aivault_ops.manifests.loader import LoadedProject
from aivault_ops.resolve.model import SecretFile
from aivault_ops.resolve.secret_index import SecretIndex, bundle_path, normalize_ref_path


def index_secret_files(loaded: LoadedProject, report: Report) -> SecretIndex:
    """Read the metadata of every secret file, reporting hygiene problems."""
    recipients = loaded.project.runtime_recipients if loaded.project else ()
    configs = _ConfigCache(loaded.root, report)
    files: dict[str, SecretFile] = {}
    for relative in sorted(_candidates(loaded)):
        secret_file = _inspect(loaded.root, relative, recipients, report, configs)
        if secret_file is not None:
            files[relative] = secret_file
    _check_bundle_paths(files, report)
    return SecretIndex(files)


def _candidates(loaded: LoadedProject) -> set[str]:
    found = set(loaded.files.secret_dir_files) | set(loaded.sops_yaml_files)
    for credential in loaded.credentials:
        for ref in credential.secret_refs.values():
            relative = normalize_ref_path(ref.file)
            if relative is not None and (loaded.root / relative).is_file():
                found.add(relative)
    return found


def _inspect(
    root: Path,
    relative: str,
    recipients: tuple[str, ...],
    report: Report,
    configs: _ConfigCache,
) -> SecretFile | None:
    path = root / relative
    try:
        metadata = sops.read_metadata(path)
    except sops.NotASopsFile:
        report.add(
            Location(relative),
            "E-SOPS-NOT-SOPS",
            "secret file is not SOPS-encrypted; encrypt it with `sops -e -i` or create"
            " values with `aivault-ops secrets set`",
        )
        return None
    except sops.SopsError as error:
        message = error.message.splitlines()[0].removeprefix(f"{path}: ")
        report.add(Location(relative), "E-SOPS-MALFORMED", message)
        return None
    for leaf in metadata.plaintext_leaves:
        report.add(
            Location(relative, leaf.line, leaf.column),
            "E-SOPS-PLAINTEXT",
            f"value of '{'.'.join(leaf.key_path)}' is not encrypted; remove it and set"
            " it again with `aivault-ops secrets set` (the plaintext may be in git history:"
            " rotate it)",
        )
    for recipient in recipients:
        if recipient not in metadata.recipients:
            report.add(
                Location(relative),
                "E-SOPS-RECIPIENT",
                f"not encrypted to runtime recipient {recipient}; add it to .sops.yaml and run"
                f" `aivault-ops secrets updatekeys {relative}`",
            )
    configs.check_rule(root, relative)
    return SecretFile(
        path=relative,
        bundle_path=bundle_path(relative),
        format=metadata.format,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        names=tuple(metadata.secret_names),
        recipients=tuple(metadata.recipients),
    )


class _ConfigCache:
    """`.sops.yaml` found (as sops does, upward from the file) once per directory."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report
        self.by_directory: dict[Path, sops.SopsConfig | sops.SopsError | None] = {}
        self.reported: set[Path] = set()

    def _config(self, directory: Path) -> sops.SopsConfig | sops.SopsError | None:
        if directory not in self.by_directory:
            try:
                self.by_directory[directory] = sops.SopsConfig.find(directory)
            except sops.SopsError as error:
                self.by_directory[directory] = error
        return self.by_directory[directory]

    def check_rule(self, root: Path, relative: str) -> None:
        path = root / relative
        config = self._config(path.parent)
        if isinstance(config, sops.SopsError):
            self._report_config_error(path.parent, config)
        elif config is None or config.rule_for(path) is None:
            _no_rule(self.report, relative)

    def _report_config_error(self, directory: Path, error: sops.SopsError) -> None:
        """Once per broken `.sops.yaml`, at that file, not at every secret file."""
        config_file = next(
            d / CONFIG_NAME
            for d in (directory.resolve(), *directory.resolve().parents)
            if (d / CONFIG_NAME).is_file()
        )
        if config_file in self.reported:
            return
        self.reported.add(config_file)
        root = self.root.resolve()
        shown = (
            config_file.relative_to(root).as_posix()
            if config_file.is_relative_to(root)
            else str(config_file)
        )
        message = error.message.splitlines()[0].removeprefix(f"{config_file}: ")
        self.report.add(Location(shown), "E-SOPS-CONFIG", message)


def _no_rule(report: Report, relative: str) -> None:
    report.add(
        Location(relative),
        "E-SOPS-NO-RULE",
        "no .sops.yaml creation rule covers this file; add a path_regex for it so"
        " edits keep the runtime recipients",
    )


def _check_bundle_paths(files: dict[str, SecretFile], report: Report) -> None:
    seen: dict[str, str] = {}
    for relative, file in files.items():
        other = seen.setdefault(file.bundle_path, relative)
        if other != relative:
            report.add(
                Location(relative),
                "E-SECRET-PATH-COLLISION",
                f"would be stored in the bundle as {file.bundle_path}, like {other}; rename one",
            )
