"""`aivault-ops registry lint [FILES…]` and `registry new PROVIDER`.

`lint` applies aivault's rules for provider JSON files. `new` writes
`registry/PROVIDER.json` in the policy repo, so a custom provider gets the
built-in ones' pinning and fixed definitions (see docs/registry.md).

Each file is linted together with the other `*.json` files of its folder,
since provider names and capability ids must be unique across a registry.
With no FILES, the policy repo's own `registry/` folder is linted (DIR as
for every command); `--builtin` lints the registry shipped with the package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aivault_ops.commands._common import project_dir
from aivault_ops.diagnostics import Diagnostic, Report
from aivault_ops.errors import UsageError

if TYPE_CHECKING:
    from aivault_ops.authoring.auth_flags import AuthFlags
    from aivault_ops.manifests.loader import LoadedProject
    from aivault_ops.manifests.model import CredentialManifest


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `registry` and its `lint` subcommand."""
    parser = subparsers.add_parser("registry", help="lint provider JSON files (registry rules)")
    verbs = parser.add_subparsers(dest="registry_command", metavar="VERB", required=True)
    lint = verbs.add_parser(
        "lint",
        help="check provider files against the registry schema and aivault's registry rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lint.add_argument("files", nargs="*", type=Path, metavar="FILES", help="provider JSON files")
    lint.add_argument(
        "--dir", type=Path, metavar="DIR", help="the policy repo (default: ./vault.d or .)"
    )
    lint.add_argument("--builtin", action="store_true", help="lint the package's built-in registry")
    lint.add_argument("--json", action="store_true", help="machine-readable output")
    _add_new(verbs)
    lint.set_defaults(
        func=lambda args: lint_registry(
            files=args.files, repo=args.dir, builtin=args.builtin, as_json=args.json
        )
    )


def _add_new(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from aivault_ops.commands._auth_options import add_auth_options
    from aivault_ops.commands._manifest_admin import add_dir_option

    new = verbs.add_parser(
        "new",
        help="write registry/PROVIDER.json from a custom provider (promote it) or from flags",
        description="Write the policy repo's registry/PROVIDER.json. Its capabilities are the"
        " repo's Capability manifests of PROVIDER's credentials. Without --auth and --host, the"
        " auth and hosts come from the repo's Provider manifest PROVIDER, which the new file"
        " replaces (that manifest is removed). Secret names (--secret-name) default to the"
        " secretRef keys of PROVIDER's credentials. The result is validated like every verb.",
    )
    new.add_argument("provider", metavar="PROVIDER")
    add_auth_options(new)
    new.add_argument("--host", action="append", default=[], metavar="H", help="repeatable")
    new.add_argument(
        "--secret-name",
        action="append",
        default=[],
        metavar="NAME[=PLACEHOLDER]",
        help="a canonical secret name pinned to the provider (placeholder default: secret)",
    )
    new.add_argument("--replace", action="store_true", help="overwrite an existing file")
    add_dir_option(new)
    new.set_defaults(func=new_from_args)


def new_from_args(args: argparse.Namespace) -> int:
    """The parsed options → `run_registry_new`."""
    from aivault_ops.commands._auth_options import auth_flags

    return run_registry_new(
        provider=args.provider,
        auth=args.auth,
        flags=auth_flags(args),
        hosts=args.host,
        secret_names=args.secret_name,
        replace=args.replace,
        directory=args.dir,
    )


def lint_registry(*, files: Sequence[Path], repo: Path | None, builtin: bool, as_json: bool) -> int:
    """Lint the chosen provider files; print `path:line:col: CODE: message`; exit 0 or 1."""
    from aivault_ops.providers import REGISTRY_DIR

    if builtin and files:
        raise UsageError("give FILES or --builtin, not both")
    if builtin:
        folders = [REGISTRY_DIR]
    elif files:
        folders = _folders(files)
    else:
        folders = [project_dir(repo) / "registry"]
    report = Report()
    count = 0
    for folder in folders:
        paths = sorted(path for path in folder.glob("*.json") if path.is_file())
        count += len(paths)
        report.extend(_lint_folder(paths))
    sys.stdout.write(report.render_json() if as_json else report.render_text())
    if not as_json:
        verdict = "ok" if report.ok else f"{len(report)} problem(s)"
        sys.stderr.write(f"registry lint: {count} file(s), {verdict}\n")
    return 0 if report.ok else 1


def _folders(files: Sequence[Path]) -> list[Path]:
    folders: list[Path] = []
    for file in files:
        if file.suffix != ".json" or not file.is_file():
            raise UsageError(f"{file}: not a provider .json file")
        if file.parent not in folders:
            folders.append(file.parent)
    return folders


def _lint_folder(paths: Sequence[Path]) -> list[Diagnostic]:
    from aivault_ops.registry_files import read_provider_file
    from aivault_ops.registry_lint import ProviderFile, lint

    found: list[Diagnostic] = []
    parsed: list[ProviderFile] = []
    for path in paths:
        read = read_provider_file(path, _display(path))
        if isinstance(read, ProviderFile):
            parsed.append(read)
        else:
            found.append(read)
    return [*found, *lint(parsed)]


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def run_registry_new(
    *,
    provider: str,
    auth: str | None = None,
    flags: AuthFlags | None = None,
    hosts: Sequence[str] = (),
    secret_names: Sequence[str] = (),
    replace: bool = False,
    directory: Path | None = None,
) -> int:
    """Write `registry/PROVIDER.json` (and remove the Provider manifest it promotes)."""
    from aivault_ops.authoring import registry_file
    from aivault_ops.authoring.auth_flags import AuthFlags, auth_from_flags
    from aivault_ops.commands._manifest_writer import baseline, write_checked

    root = project_dir(directory)
    before = baseline(root)
    loaded = before.loaded
    custom = next((m for m in loaded.providers if m.name == provider), None)
    files: dict[str, str | None] = {}
    if auth is not None or hosts:
        if auth is None or not hosts:
            raise UsageError("give --auth STRATEGY and --host H together (or neither)")
        auth_value = auth_from_flags(auth, flags or AuthFlags())
        provider_hosts = list(hosts)
    elif custom is not None:
        auth_value, provider_hosts = custom.spec["auth"], list(custom.spec["hosts"])
    else:
        raise UsageError(f"the repo has no Provider {provider}: pass --auth STRATEGY and --host H")
    if custom is not None:
        _refuse_shared_file(custom.source.path, loaded)
        files[custom.source.path] = None  # the registry file takes its place
    credentials = [c for c in loaded.credentials if c.provider == provider]
    names = {c.name for c in credentials}
    entries = [
        registry_file.CapabilityEntry(
            cap.name, cap.methods, cap.path_prefixes, cap.hosts or provider_hosts
        )
        for cap in loaded.capabilities
        if cap.credential in names
    ]
    if not entries:
        raise UsageError(
            f"no Capability manifest of a {provider} credential in the repo: write them first"
            " (aivault-ops capability create …)"
        )
    document = registry_file.registry_provider(
        provider,
        auth=auth_value,
        hosts=provider_hosts,
        vault_secrets=_vault_secrets(secret_names, credentials),
        capabilities=entries,
    )
    files[f"registry/{provider}.json"] = registry_file.render(document)
    write_checked(root, files, replace=replace, before=before)
    return 0


def _vault_secrets(
    given: Sequence[str], credentials: Sequence[CredentialManifest]
) -> dict[str, str]:
    """`--secret-name NAME[=PLACEHOLDER]`, else the keys the provider's credentials use."""
    if given:
        pairs = [text.partition("=") for text in given]
        return {name: placeholder or "secret" for name, _, placeholder in pairs}
    found = {
        (ref.name, placeholder or "secret")
        for credential in credentials
        for placeholder, ref in credential.secret_refs.items()
    }
    names = {name for name, _ in found}
    if len(names) != len(found) or not found:
        raise UsageError(
            "name the provider's secrets with --secret-name NAME[=PLACEHOLDER]"
            " (its credentials do not agree on one secretRef key per placeholder)"
        )
    return dict(sorted(found))


def _refuse_shared_file(path: str, loaded: LoadedProject) -> None:
    """The promoted Provider's file is removed: refuse when it holds other manifests."""
    kinds = (loaded.providers, loaded.credentials, loaded.capabilities, loaded.consumers)
    count = sum(1 for manifests in kinds for m in manifests if m.source.path == path)
    count += sum(1 for project in loaded.projects if project.source.path == path)
    if count > 1:
        raise UsageError(
            f"{path} holds other manifests besides the Provider: move the Provider to a file"
            " of its own first"
        )
