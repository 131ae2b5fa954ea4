"""`aivault-ops secrets set|list|get|updatekeys|rotate`: SOPS files, the way sops works.

Paths are relative to the current directory, `.sops.yaml` is found by
searching upward from it, and no Project manifest is needed. No command
prints a secret value except `get --reveal`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._secret_files import config_for, each_file, set_target, target_files
from aivault_ops.errors import AivaultError, UsageError
from aivault_ops.suggest import did_you_mean

if TYPE_CHECKING:
    from aivault_ops.secret import Secret


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
    _add_create(commands)
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
    parser.set_defaults(func=set_from_args)


def _add_create(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "create",
        help="aivault's spelling of `set`: --name N, value from stdin",
        description="Like `secrets set`, spelled as aivault spells it. --scope accepts only"
        " `global`: environments (--env, spec.environments) replace aivault's scopes.",
    )
    parser.add_argument("--name", required=True, metavar="NAME")
    parser.add_argument("--file", type=Path, metavar="F", help="the SOPS file (default: see docs)")
    parser.add_argument("--value", help="the value (lands in shell history; prefer stdin)")
    parser.add_argument("--scope", default="global", help="only `global` (the default)")
    _common(parser)
    parser.set_defaults(func=create_from_args)


def _add_list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("list", help="secret names, files and recipients (no values)")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser, identity=False)
    parser.set_defaults(func=list_from_args)


def _add_get(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("get", help="print one secret value (needs --reveal)")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--file", type=Path, metavar="F")
    parser.add_argument("--reveal", action="store_true", help="confirm printing the plaintext")
    _common(parser)
    parser.set_defaults(func=get_from_args)


def _add_updatekeys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "updatekeys", help="re-wrap the data key for the current recipients"
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser)
    parser.set_defaults(func=updatekeys_from_args)


def _add_rotate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rotate", help="new data key; every value re-encrypted")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _common(parser)
    parser.set_defaults(func=rotate_from_args)


def set_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_set`."""
    return run_set(
        name=args.name,
        file=args.file,
        value=args.value,
        identity=args.identity,
        as_json=args.json,
    )


def create_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_create`."""
    return run_create(
        name=args.name,
        file=args.file,
        value=args.value,
        scope=args.scope,
        identity=args.identity,
        as_json=args.json,
    )


def list_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_list`."""
    return run_list(files=args.files, as_json=args.json)


def get_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_get`."""
    return run_get(
        name=args.name,
        file=args.file,
        reveal=args.reveal,
        identity=args.identity,
        as_json=args.json,
    )


def updatekeys_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_updatekeys`."""
    return run_updatekeys(files=args.files, identity=args.identity, as_json=args.json)


def rotate_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_rotate`."""
    return run_rotate(files=args.files, identity=args.identity, as_json=args.json)


def _emit(as_json: bool, data: object, human: Iterable[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        for line in human:
            sys.stdout.write(line + "\n")


def _read_value(name: str, given: str | None) -> Secret:
    """The new value from `--value`, a no-echo prompt on a terminal, or stdin."""
    from aivault_ops.secret import Secret

    if given is not None:
        value = given
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"value for {name} (not echoed): ")
    else:
        value = sys.stdin.read()
        value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise UsageError("refusing to store an empty value (sops never encrypts empty strings)")
    return Secret(value)


def run_set(
    *,
    name: str,
    file: Path | None = None,
    value: str | None = None,
    identity: Path | None = None,
    as_json: bool = False,
) -> int:
    """Create or update one secret; the value never appears in the output.

    `value` None: a no-echo prompt on a terminal, else stdin. `file` None: the
    file holding `name`, or the one the manifests or `.sops.yaml` point to.
    """
    from aivault_ops.sops import load_identities, set_value

    secret = _read_value(name, value)
    path = file or set_target(name)
    identities = load_identities(identity) if path.exists() else None
    status = set_value(path, name, secret, config_for(path), identities)
    data = {"name": name, "file": str(path), "status": status}
    _emit(as_json, data, [f"{status} {name} in {path}"])
    return 0


def run_create(
    *,
    name: str,
    file: Path | None = None,
    value: str | None = None,
    scope: str = "global",
    identity: Path | None = None,
    as_json: bool = False,
) -> int:
    """`secrets create --name N`: `run_set` with aivault's option names."""
    if scope != "global":
        raise UsageError(
            f"--scope {scope}: the only scope is `global`; environments replace aivault's"
            " scopes (render per-environment manifests with --env, see spec.environments)"
        )
    if value is not None:
        sys.stderr.write(
            "aivault-ops: warning: --value puts the secret in your shell history and the"
            " process list; pipe it on stdin instead\n"
        )
    return run_set(name=name, file=file, value=value, identity=identity, as_json=as_json)


def run_list(*, files: Sequence[Path] = (), as_json: bool = False) -> int:
    """Names, files and recipients of `files` (none: every SOPS file below the current
    directory)."""
    from aivault_ops.sops import read_metadata
    from aivault_ops.sops.discover import all_metadata

    failed: list[str] = []
    if files:
        metas = [read_metadata(path) for path in files]
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
    _emit(as_json, rows, human or ["no SOPS files found"])
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


def run_get(
    *,
    name: str,
    file: Path | None = None,
    reveal: bool = False,
    identity: Path | None = None,
    as_json: bool = False,
) -> int:
    """Print one decrypted value, only with `reveal` (`--reveal`)."""
    from aivault_ops.sops import decrypt_file, load_identities
    from aivault_ops.sops.discover import unique_holder

    if not reveal:
        raise UsageError("secrets get prints a plaintext value; pass --reveal to confirm")
    path = file or unique_holder(name, Path())
    if path is None:
        raise AivaultError(
            f"no SOPS file below the current directory holds {name}"
            + did_you_mean(name, _all_names())
        )
    secrets = decrypt_file(path, load_identities(identity)).secrets()
    if name not in secrets:
        raise AivaultError(f"{path}: has no secret named {name}{did_you_mean(name, secrets)}")
    value = secrets[name].reveal()
    if as_json:
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
        _emit(as_json, {"name": name, "file": str(path), "value": text}, [])
    elif isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        sys.stdout.write(value + "\n")
    return 0


def run_updatekeys(
    *, files: Sequence[Path] = (), identity: Path | None = None, as_json: bool = False
) -> int:
    """Re-wrap each file's data key (none given: every SOPS file below the current
    directory) for the recipients of its current creation rule."""
    from aivault_ops.sops import SopsConfig, load_identities, update_keys

    targets = target_files(files)
    config = SopsConfig.find(Path.cwd())
    identities = load_identities(identity)

    def action(path: Path) -> dict[str, object]:
        update = update_keys(path, config, identities)
        return {
            "file": str(path),
            "changed": update.changed,
            "added": list(update.added),
            "removed": list(update.removed),
        }

    results, failures = each_file(targets, action)
    _emit(as_json, results, [_describe_update(result) for result in results])
    return 1 if failures else 0


def _describe_update(result: dict[str, object]) -> str:
    if not result["changed"]:
        return f"{result['file']}: already up to date"
    added, removed = result["added"], result["removed"]
    assert isinstance(added, list) and isinstance(removed, list)
    return f"{result['file']}: updated keys (+{len(added)} -{len(removed)} recipients)"


def run_rotate(
    *, files: Sequence[Path] = (), identity: Path | None = None, as_json: bool = False
) -> int:
    """New data key per file (none given: every SOPS file below the current directory);
    every value re-encrypted, recipients kept."""
    from aivault_ops.sops import load_identities, rotate

    targets = target_files(files)
    identities = load_identities(identity)

    def action(path: Path) -> dict[str, object]:
        rotate(path, identities)
        return {"file": str(path), "rotated": True}

    results, failures = each_file(targets, action)
    _emit(as_json, results, [f"{result['file']}: rotated data key" for result in results])
    return 1 if failures else 0
