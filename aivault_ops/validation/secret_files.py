"""Secret-file hygiene, read from SOPS metadata alone (no private key).

Every secret file must be a SOPS file inside the project, every value that
should be encrypted must be (a plaintext value slipped into a SOPS file is
caught here), the file must be encrypted to every runtime recipient, and a
`.sops.yaml` creation rule that also names every runtime recipient must cover
it, so that later edits keep them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aivault_ops import sops
from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.loader import LoadedProject
from aivault_ops.resolve.model import SecretFile
from aivault_ops.resolve.secret_index import SecretIndex, bundle_path, normalize_ref_path
from aivault_ops.validation.sops_rules import ConfigCache

_NOT_SOPS = (
    "secret file is not SOPS-encrypted; encrypt it with `sops -e -i` or create values with"
    " `aivault-ops secrets set`"
)


@dataclass(frozen=True)
class _Context:
    root: Path
    recipients: tuple[str, ...]
    report: Report
    configs: ConfigCache


def index_secret_files(loaded: LoadedProject, report: Report) -> SecretIndex:
    """Read the metadata of every secret file, reporting hygiene problems."""
    recipients = loaded.project.runtime_recipients if loaded.project else ()
    context = _Context(loaded.root, recipients, report, ConfigCache(loaded.root, report))
    files: dict[str, SecretFile] = {}
    for relative in sorted(_candidates(loaded)):
        secret_file = _inspect(relative, context)
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


def _inspect(relative: str, context: _Context) -> SecretFile | None:
    path = context.root / relative
    if not path.resolve().is_relative_to(context.root.resolve()):
        context.report.add(
            Location(relative),
            "E-SECRET-OUTSIDE",
            "secret file is a link to a file outside the project; bundles carry only files"
            " committed inside it",
        )
        return None
    metadata = _metadata(path, relative, context.report)
    if metadata is None:
        return None
    _check_leaves(relative, metadata, context.report)
    _check_recipients(relative, metadata, context)
    context.configs.check_rule(path, relative, context.recipients)
    return SecretFile(
        path=relative,
        bundle_path=bundle_path(relative),
        format=metadata.format,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        names=tuple(metadata.secret_names),
        recipients=tuple(metadata.recipients),
        unencrypted_names=tuple(
            name for name in metadata.secret_names if not metadata.rules.should_encrypt((name,))
        ),
        unencrypted_rule=metadata.rules.kind,
        fields=metadata.secret_fields,
    )


def _metadata(path: Path, relative: str, report: Report) -> sops.SopsMetadata | None:
    try:
        return sops.read_metadata(path)
    except sops.NotASopsFile:
        report.add(Location(relative), "E-SOPS-NOT-SOPS", _NOT_SOPS)
    except sops.MalformedSopsFile as error:
        if sops.format_for(path) == "binary":  # a binary-store SOPS file is always JSON
            report.add(Location(relative), "E-SOPS-NOT-SOPS", _NOT_SOPS)
        else:
            report.add(Location(relative), "E-SOPS-MALFORMED", _message(error, path))
    except sops.SopsError as error:
        report.add(Location(relative), "E-SOPS-MALFORMED", _message(error, path))
    return None


def _message(error: sops.SopsError, path: Path) -> str:
    return error.message.splitlines()[0].removeprefix(f"{path}: ")


def _check_leaves(relative: str, metadata: sops.SopsMetadata, report: Report) -> None:
    for leaf in metadata.plaintext_leaves:
        report.add(
            Location(relative, leaf.line, leaf.column),
            "E-SOPS-PLAINTEXT",
            f"value of '{'.'.join(leaf.key_path)}' is not encrypted; remove it and set"
            " it again with `aivault-ops secrets set` (the plaintext may be in git history:"
            " rotate it)",
        )


def _check_recipients(relative: str, metadata: sops.SopsMetadata, context: _Context) -> None:
    for recipient in context.recipients:
        if recipient not in metadata.recipients:
            context.report.add(
                Location(relative),
                "E-SOPS-RECIPIENT",
                f"not encrypted to runtime recipient {recipient}; add it to .sops.yaml and run"
                f" `aivault-ops secrets updatekeys {relative}`",
            )


def _check_bundle_paths(files: dict[str, SecretFile], report: Report) -> None:
    """Two files must not share a bundle name; the one outside secrets/ is renamed."""
    owners = {file.bundle_path: path for path, file in files.items() if path == file.bundle_path}
    for relative, file in files.items():
        other = owners.get(file.bundle_path)
        if other is not None and other != relative:
            report.add(
                Location(relative),
                "E-SECRET-PATH-COLLISION",
                f"would be stored in the bundle as {file.bundle_path}, like {other}; rename one",
            )
