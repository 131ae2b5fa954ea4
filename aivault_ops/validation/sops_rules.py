"""`.sops.yaml` checks: a rule covers each secret file and names every runtime recipient."""

from __future__ import annotations

from pathlib import Path

from aivault_ops import sops
from aivault_ops.diagnostics import Location, Report
from aivault_ops.manifests.discovery import SOPS_CONFIG


class ConfigCache:
    """`.sops.yaml` found (as sops does, upward from the file) once per directory."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report
        self.by_directory: dict[Path, sops.SopsConfig | sops.SopsError | None] = {}
        self.reported: set[Path] = set()

    def check_rule(self, path: Path, relative: str, recipients: tuple[str, ...]) -> None:
        """Report a missing rule, or a rule that would drop a runtime recipient on edit."""
        config = self._config(path.parent)
        if isinstance(config, sops.SopsError):
            self._report_config_error(path.parent, config)
            return
        rule = config.rule_for(path) if config is not None else None
        if rule is None:
            self.report.add(
                Location(relative),
                "E-SOPS-NO-RULE",
                "no .sops.yaml creation rule covers this file; add a path_regex for it so"
                " edits keep the runtime recipients",
            )
            return
        for recipient in recipients:
            if recipient not in rule.recipients:
                self.report.add(
                    Location(relative),
                    "E-SOPS-RECIPIENT",
                    "the .sops.yaml rule for this file does not encrypt to runtime recipient"
                    f" {recipient}; add it to the rule",
                )

    def _config(self, directory: Path) -> sops.SopsConfig | sops.SopsError | None:
        if directory not in self.by_directory:
            try:
                self.by_directory[directory] = sops.SopsConfig.find(directory)
            except sops.SopsError as error:
                self.by_directory[directory] = error
        return self.by_directory[directory]

    def _report_config_error(self, directory: Path, error: sops.SopsError) -> None:
        """Once per broken `.sops.yaml`, at that file, not at every secret file."""
        start = directory.resolve()
        config_file = next(
            d / SOPS_CONFIG for d in (start, *start.parents) if (d / SOPS_CONFIG).is_file()
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
