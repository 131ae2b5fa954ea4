"""`aivault-ops secrets set|list|get|updatekeys|rotate`: SOPS files, the way sops works.

Paths are relative to the current directory, `.sops.yaml` is found by
searching upward from it, and no Project manifest is needed. No command
prints a secret value except `get --reveal`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.suggest import did_you_mean

if TYPE_CHECKING:
    from aivault_ops.secret import Secret
    from aivault_ops.sops import Identities, SopsConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `secrets` and its subcommands."""
    parser = subparsers.add_parser(
        "secrets",
        help="create, list, read and re-key SOPS secret files (age)",
        description="SOPS-compatible secret files with age recipients (see docs/secrets.md).",
    )
    commands = parser.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    commands.required = True
    _add_set(commands)
    _add_list(commands)
    _add_get(commands)
    _add_updatekeys(commands)
    _add_rotate(commands)


def _common(parser: argparse.ArgumentParser, *, identity: bool = True) -> None:
    if identity:
        parser.add_argument(
            "--identity",
            type=Path,
            metavar="FILE",
            help="age identity file (also SOPS_AGE_KEY_FILE …)",
        )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_set(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("set", help="create or update a secret (value from stdin)")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--file", type=Path, metavar="F", help="the SOPS file (default: see docs)")
    parser.add_argument("--value", help="the value (visible in the process list; prefer stdin)")
    _common(parser)
    parser.set_defaults(func=run_set)


def _add_list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("list", help="secret names, files and recipients (no values)")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser, identity=False)
    parser.set_defaults(func=run_list)


def _add_get(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("get", help="print one secret value (needs --reveal)")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--file", type=Path, metavar="F")
    parser.add_argument("--reveal", action="store_true", help="confirm printing the plaintext")
    _common(parser)
    parser.set_defaults(func=run_get)


def _add_updatekeys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "updatekeys", help="re-wrap the data key for the current recipients"
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser)
    parser.set_defaults(func=run_updatekeys)


def _add_rotate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rotate", help="new data key; every value re-encrypted")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser)
    parser.set_defaults(func=run_rotate)


def _emit(args: argparse.Namespace, data: object, human: Iterable[str]) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        for line in human:
            sys.stdout.write(line + "\n")


def _identities(args: argparse.Namespace) -> Identities:
    from aivault_ops.sops import load_identities

    return load_identities(args.identity)


def _set_target(name: str) -> Path:
    from aivault_ops.sops.discover import default_file, unique_holder

    existing = unique_holder(name, Path())
    if existing is not None:
        return existing
    base = _repo_base()
    target = _declared_file(name, base) or base / default_file(name)
    config = _config_for(target)
    if config is None or config.rule_for(target) is None:
        raise AivaultError(
            f"no SOPS file below the current directory holds {name}, and no creation rule "
            f"in .sops.yaml covers the default {target}",
            hint="pass --file F",
        )
    return target


def _repo_base() -> Path:
    """Where new secret files go: here, or `./vault.d` when only it is a policy repo.

    From the directory `validate` runs in (the parent of `vault.d`), the
    `secrets set NAME` its messages suggest then works as pasted.
    """
    from aivault_ops.manifests.loader import PROJECT_FILE
    from aivault_ops.manifests.secret_refs import project_root

    default_repo = Path("vault.d")
    if project_root(Path.cwd()) is None and (default_repo / PROJECT_FILE).is_file():
        return default_repo
    return Path()


def _config_for(target: Path) -> SopsConfig | None:
    """`.sops.yaml` above the current directory, as sops finds it, else above `target`."""
    from aivault_ops.sops import SopsConfig

    return SopsConfig.find(Path.cwd()) or SopsConfig.find(target.parent)


def _declared_file(name: str, base: Path) -> Path | None:
    """The file a Credential's `secretRef` names for `name`, when exactly one does."""
    from aivault_ops.manifests.secret_refs import declared_files

    files = declared_files(name, base)
    if len(files) > 1:
        listed = ", ".join(str(path) for path in files)
        raise AivaultError(
            f"the manifests name more than one file for {name}: {listed}", hint="pass --file F"
        )
    return files[0] if files else None


def _read_value(args: argparse.Namespace) -> Secret:
    """The new value from `--value`, a no-echo prompt on a terminal, or stdin."""
    from aivault_ops.secret import Secret

    if args.value is not None:
        value: str = args.value
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"value for {args.name} (not echoed): ")
    else:
        value = sys.stdin.read()
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise UsageError("refusing to store an empty value (sops never encrypts empty strings)")
    return Secret(value)


def run_set(args: argparse.Namespace) -> int:
    """Create or update one secret; the value never appears in the output."""
    from aivault_ops.sops import load_identities, set_value

    value = _read_value(args)
    path: Path = args.file or _set_target(args.name)
    identities = load_identities(args.identity) if path.exists() else None
    status = set_value(path, args.name, value, _config_for(path), identities)
    data = {"name": args.name, "file": str(path), "status": status}
    _emit(args, data, [f"{status} {args.name} in {path}"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Names, files and recipients of every SOPS file below the current directory."""
    from aivault_ops.sops import read_metadata
    from aivault_ops.sops.discover import all_metadata

    failed: list[str] = []
    if args.files:
        metas = [read_metadata(path) for path in args.files]
    else:
        metas, failed = all_metadata(Path())
    rows = [
        {
            "name": name,
            "file": str(meta.path),
            "format": meta.format,
            "recipients": list(meta.recipients),
        }
        for meta in metas
        for name in meta.secret_names
    ]
    human = [
        f"{name}\t{meta.path}\t{', '.join(meta.recipients)}"
        for meta in metas
        for name in meta.secret_names
    ]
    _emit(args, rows, human or ["no SOPS files found"])
    _warn_placeholders([meta.path for meta in metas])
    for message in failed:
        sys.stderr.write(f"aivault-ops: error: {message}\n")
    return 1 if failed else 0


def _warn_placeholders(files: list[Path]) -> None:
    """A warning (name and file, never a value) per secret still holding init's placeholder."""
    from aivault_ops.sops.placeholders import placeholder_secrets

    for name, path in placeholder_secrets(files):
        sys.stderr.write(
            f"aivault-ops: warning: {name} in {path} still holds the placeholder `init` wrote;"
            f" set the real value with `aivault-ops secrets set {name}`\n"
        )


def _all_names() -> set[str]:
    from aivault_ops.sops.discover import all_metadata

    metas, _ = all_metadata(Path())
    return {name for meta in metas for name in meta.secret_names}


def run_get(args: argparse.Namespace) -> int:
    """Print one decrypted value, only with `--reveal`."""
    from aivault_ops.sops import decrypt_file
    from aivault_ops.sops.discover import unique_holder

    if not args.reveal:
        raise UsageError("secrets get prints a plaintext value; pass --reveal to confirm")
    path = args.file or unique_holder(args.name, Path())
    if path is None:
        raise AivaultError(
            f"no SOPS file below the current directory holds {args.name}"
            + did_you_mean(args.name, _all_names())
        )
    secrets = decrypt_file(path, _identities(args)).secrets()
    if args.name not in secrets:
        raise AivaultError(
            f"{path}: has no secret named {args.name}{did_you_mean(args.name, secrets)}"
        )
    value = secrets[args.name].reveal()
    if args.json:
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
        _emit(args, {"name": args.name, "file": str(path), "value": text}, [])
    elif isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        sys.stdout.write(value + "\n")
    return 0


def _targets(args: argparse.Namespace) -> list[Path]:
    from aivault_ops.sops.discover import candidate_files

    files: list[Path] = args.files or list(candidate_files(Path()))
    if not files:
        raise AivaultError("no SOPS files found below the current directory")
    return files


def _each_file(
    files: list[Path], action: Callable[[Path], dict[str, object]]
) -> tuple[list[dict[str, object]], int]:
    from aivault_ops.sops import SopsError

    results, failures = [], 0
    progress = sys.stderr.isatty() and len(files) > 1
    for index, path in enumerate(files, start=1):
        if progress:
            sys.stderr.write(f"\r\x1b[K[{index}/{len(files)}] {path}")
            sys.stderr.flush()
        try:
            results.append(action(path))
        except SopsError as error:
            failures += 1
            sys.stderr.write(
                ("\n" if progress else "") + f"aivault-ops: error: {error.diagnostics()}\n"
            )
    if progress:
        sys.stderr.write("\r\x1b[K")
    return results, failures


def run_updatekeys(args: argparse.Namespace) -> int:
    """Re-wrap each file's data key for the recipients of its current creation rule."""
    from aivault_ops.sops import SopsConfig, update_keys

    files = _targets(args)
    config = SopsConfig.find(Path.cwd())
    identities = _identities(args)

    def action(path: Path) -> dict[str, object]:
        update = update_keys(path, config, identities)
        return {
            "file": str(path),
            "changed": update.changed,
            "added": list(update.added),
            "removed": list(update.removed),
        }

    results, failures = _each_file(files, action)
    _emit(args, results, [_describe_update(result) for result in results])
    return 1 if failures else 0


def _describe_update(result: dict[str, object]) -> str:
    if not result["changed"]:
        return f"{result['file']}: already up to date"
    added, removed = result["added"], result["removed"]
    assert isinstance(added, list) and isinstance(removed, list)
    return f"{result['file']}: updated keys (+{len(added)} -{len(removed)} recipients)"


def run_rotate(args: argparse.Namespace) -> int:
    """New data key per file; every value re-encrypted, recipients kept."""
    from aivault_ops.sops import rotate

    files = _targets(args)
    identities = _identities(args)

    def action(path: Path) -> dict[str, object]:
        rotate(path, identities)
        return {"file": str(path), "rotated": True}

    results, failures = _each_file(files, action)
    _emit(args, results, [f"{result['file']}: rotated data key" for result in results])
    return 1 if failures else 0
