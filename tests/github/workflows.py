"""The workflows of .github/workflows/, parsed, and the tools that check them; shared by tests/github/."""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.tools import venv_tool

ROOT = Path(__file__).resolve().parent.parent.parent
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
SCRIPTS = GITHUB / "scripts"
VENV_BIN = ROOT / ".venv" / "bin"

Doc = dict[str, Any]


def require(name: str) -> Path:
    """A tool of the project's virtualenv, or a failure that says how to get it."""
    return venv_tool(name)


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    doc: Doc

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def triggers(self) -> Doc:
        # YAML 1.1 reads the bare key `on` as the boolean true.
        on = self.doc["on"] if "on" in self.doc else self.doc.get(True)  # type: ignore[call-overload]
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        assert isinstance(on, dict), f"{self.name}: no triggers"
        return on

    @property
    def reusable_only(self) -> bool:
        return set(self.triggers) == {"workflow_call"}

    @property
    def jobs(self) -> dict[str, Doc]:
        jobs: dict[str, Doc] = self.doc["jobs"]
        return jobs


@functools.cache
def workflows() -> tuple[Workflow, ...]:
    paths = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert paths, "no workflow in .github/workflows/"
    return tuple(Workflow(path, path.read_text(), yaml.safe_load(path.read_text())) for path in paths)


def workflow(name: str) -> Workflow:
    return next(w for w in workflows() if w.name == name)


def steps(job: Doc) -> list[Doc]:
    found: list[Doc] = job.get("steps", [])
    return found


def all_jobs() -> Iterator[tuple[Workflow, str, Doc]]:
    for flow in workflows():
        for job_id, job in flow.jobs.items():
            yield flow, job_id, job


def run_blocks() -> Iterator[tuple[Workflow, str, str]]:
    """Every `run:` script: (workflow, job id, script)."""
    for flow, job_id, job in all_jobs():
        for step in steps(job):
            if "run" in step:
                yield flow, job_id, str(step["run"])


def uses_lines() -> Iterator[tuple[Workflow, int, str]]:
    """Every `uses:` line as written (the version comments are not in the parsed YAML)."""
    for flow in workflows():
        for number, line in enumerate(flow.text.splitlines(), start=1):
            if re.match(r"^\s*(-\s+)?uses:", line):
                yield flow, number, line


_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def strip_expressions(text: str, replacement: str = "") -> str:
    """``text`` without its ``${{ … }}`` expressions (or with each replaced by ``replacement``)."""
    return _EXPRESSION.sub(replacement, text)


@functools.cache
def make_targets() -> frozenset[str]:
    """The Makefile's targets, as `make` itself lists them (its database, no recipe run)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-pRrq", "-f", str(ROOT / "Makefile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    # -q exits 1 when the default goal is out of date; the database is printed either way.
    assert result.returncode in (0, 1), result.stderr
    targets = set()
    for line in result.stdout.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(?!=)", line)
        if match:
            targets.add(match[1])
    assert "test" in targets, "could not read the Makefile's targets"
    return frozenset(targets)


@functools.cache
def tracked_files() -> tuple[str, ...]:
    result = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return tuple(result.stdout.splitlines())


def filter_regex(pattern: str) -> re.Pattern[str]:
    """A GitHub `paths:` filter as a regex: `**` crosses folders, `*` and `?` do not."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)
