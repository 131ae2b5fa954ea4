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
from aivault_ops.manifests.loader import LoadedProject
from aivault_ops.resolve.model import SecretFile
from aivault_ops.resolve.secret_index import SecretIndex, bundle_path, normalize_ref_path


def index_secret_files(loaded: LoadedProject, report: Report) -> SecretIndex:
    """Read the metadata of every secret file, reporting hygiene problems."""
    recipients = loaded.project.runtime_recipients if loaded.project else ()
    files: dict[str, SecretFile] = {}
    for relative in sorted(_candidates(loaded)):
        secret_file = _inspect(loaded.root, relative, recipients, report)
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
    root: Path, relative: str, recipients: tuple[str, ...], report: Report
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
        report.add(Location(relative), "E-SOPS-MALFORMED", _first_line(error.message, relative))
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
    _check_rule(root, relative, report)
    return SecretFile(
        path=relative,
        bundle_path=bundle_path(relative),
        format=metadata.format,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        names=tuple(metadata.secret_names),
        recipients=tuple(metadata.recipients),
    )


def _check_rule(root: Path, relative: str, report: Report) -> None:
    path = root / relative
    try:
        config = sops.SopsConfig.find(path.parent)
    except sops.SopsError as error:
        report.add(Location(relative), "E-SOPS-CONFIG", _first_line(error.message, relative))
        return
    if config is None or config.rule_for(path) is None:
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


def _first_line(message: str, relative: str) -> str:
    line = message.splitlines()[0] if message else "unreadable SOPS file"
    return line.removeprefix(f"{relative}: ")
