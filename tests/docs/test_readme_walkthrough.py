"""The README's "Ten minutes" block, run as a new user would paste it.

A scratch HOME with nothing in it, a fresh working directory, and every
command of the block run in order through bash. The only liberties taken:
the install line is skipped (the package is installed), the token
placeholder is replaced by the token `init` printed (as the user would),
and the commands marked "in a second/third terminal" run in the background.
Any step that fails fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN_PLACEHOLDER = "<the consumer token init printed>"
SECRET = "sk-test-replace-with-your-key"


def section_block(markdown: str, heading: str) -> str:
    """The first ```sh block after `heading`."""
    after = markdown.split(f"\n{heading}\n", 1)[1]
    return after.split("```sh\n", 1)[1].split("\n```", 1)[0]


@dataclass(frozen=True)
class Step:
    """One command of the block, the comment line before it and its trailing comment."""

    marker: str
    command: str
    comment: str


def steps(block: str) -> list[Step]:
    """The block's commands, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", "", block)
    result: list[Step] = []
    marker = ""
    for line in joined.splitlines():
        if line.startswith("#"):
            marker = line
            continue
        command, _, comment = line.partition("  #")
        if command.strip():
            result.append(Step(marker, command.strip(), comment))
            marker = ""
    return result


@dataclass
class Shell:
    """A user's shell: working directory, environment, background jobs."""

    cwd: Path
    env: dict[str, str]
    jobs: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command], cwd=self.cwd, env=self.env, text=True,
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip

    def background(self, command: str, log: Path) -> subprocess.Popen[str]:
        with log.open("w") as err:
            job = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, text=True,
                stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
        self.jobs.append(job)
        return job


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPS_", "XDG_", "AIVAULT_"))}
    shell = Shell(work, {**env, "HOME": str(home)})
    yield shell
    for job in shell.jobs:
        job.terminate()
        job.wait(timeout=15)
        if job.stdout is not None:
            job.stdout.close()


def test_the_ten_minutes_block_works_as_written(shell: Shell, tmp_path: Path) -> None:
    block = section_block((REPO / "README.md").read_text(encoding="utf-8"), "## Ten minutes")
    commands = steps(block)
    install = commands.pop(0).command
    assert install.startswith("pip install "), "the block starts by installing the package"
    token = ""
    last: subprocess.CompletedProcess[str] | None = None
    for index, step in enumerate(commands):
        command = step.command.replace(TOKEN_PLACEHOLDER, token)
        if command.startswith("cd "):
            shell.cwd = (shell.cwd / command[3:]).resolve()
        elif command.startswith("export "):
            name, _, value = command[7:].partition("=")
            shell.env[name] = value.strip("'\"")
        elif re.search(r"in a (second|third) terminal", step.marker):
            job = shell.background(command, tmp_path / f"job-{index}.log")
            if "dev-upstream" in command:
                assert job.stdout is not None
                assert "dev upstream" in job.stdout.readline()
        else:
            last = shell.run(command)
            expected = 2 if "exit 2" in step.comment else 0
            assert last.returncode == expected, f"{command}\n{last.stdout}\n{last.stderr}"
            found = re.search(r"token \(shown once, store it now\): (\S+)", last.stdout)
            token = found.group(1) if found else token
    assert last is not None
    echoed = json.loads(last.stdout)
    assert echoed["path"] == "/v1/things?limit=2"
    assert echoed["echoedHeaders"]["authorization"] == "Bearer [REDACTED]"
    logs = " ".join(path.read_text() for path in tmp_path.glob("job-*.log"))
    assert f"authorization='Bearer {SECRET}'" in logs, "the key never reached the upstream"
    assert SECRET not in last.stdout + last.stderr
