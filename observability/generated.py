"""Every generated file of the repository: ``python -m observability.generated`` (``make generate``) writes
them all and deletes the orphans; ``--check`` (``make generate-check``) writes nothing and fails when the
tree differs from what the sources give.

Each generator renders its own folder's files and contributes ``outputs()`` (path → content):

- observability/generate.py: the rule files, the runbook index and the burn-rate runbooks, the Grafana
  data sources, the trace pipeline's configuration;
- dashboards/generate.py: the dashboards' JSON;
- k8s/generate.py: the manifests derived from those two (handed over in memory, never read back from
  disk), from the SLO file and from the locustfile.

It lives here because the SLO file of this package is where most of it descends from.

An orphan is a file in a generated-output location (:data:`LOCATIONS`) that no source produces any more,
such as the rule file of a deleted SLO file, which Prometheus would keep loading. The locations are
listed here, apart from the generators, so that deleting a generator's code does not also delete the
knowledge of where its files were; and every output must lie in one, so the list cannot fall behind.

Exit codes: 0 every file matches its sources (or has been written), 1 ``--check`` found a stale, missing
or orphaned file (each one listed), 2 the sources could not be rendered or the tree could not be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml

from dashboards import generate as dashboards_generate
from k8s import generate as k8s_generate
from observability import generate as observability_generate
from observability.links import GENERATED_RUNBOOK_MARK, RUNBOOK_DIR
from observability.paths import ROOT, RULES_DIR


@dataclass(frozen=True)
class Location:
    """Where generated files live: the files directly in ``folder`` (relative to the repository root) whose
    name matches one of ``patterns`` and whose text starts with ``marker`` (for a folder shared with
    hand-written files)."""

    folder: Path
    patterns: tuple[str, ...] = ("*",)
    marker: str = ""

    def holds(self, path: Path, head: str) -> bool:
        """Whether the file ``path`` (relative), beginning with ``head``, is one of this location's."""
        return (
            path.parent == self.folder
            and any(fnmatchcase(path.name, pattern) for pattern in self.patterns)
            and head.startswith(self.marker)
        )

    def files(self, root: Path) -> list[Path]:
        """The location's files in the tree at ``root``, relative to it."""
        folder = root / self.folder
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            if path.is_file():
                relative = path.relative_to(root)
                if self.holds(relative, _head(path, len(self.marker))):
                    found.append(relative)
        return found


def _relative(path: Path) -> Path:
    return path.relative_to(ROOT)


def _one_file(path: Path) -> Location:
    return Location(_relative(path.parent), (path.name,))


# The generated-output locations; a file in one of them is either an output or an orphan.
LOCATIONS = (
    # Every rule file Prometheus loads (the local stack, compose and the k8s copies take both suffixes).
    Location(_relative(RULES_DIR), ("*.yml", "*.yaml")),
    # The runbook index and the burn-rate runbooks; the pages written by hand carry no mark.
    Location(_relative(RUNBOOK_DIR), ("*.md",), GENERATED_RUNBOOK_MARK),
    _one_file(observability_generate.DATASOURCES_FILE),
    _one_file(observability_generate.COLLECTOR_FILE),
    # Folders that hold generated files only.
    Location(_relative(dashboards_generate.OUT_DIR)),
    *(Location(_relative(folder)) for folder in k8s_generate.OUTPUT_DIRS),
)


def _head(path: Path, size: int) -> str:
    if not size:
        return ""
    with path.open(encoding="utf-8") as file:
        return file.read(size)


def outputs() -> dict[Path, str]:
    """Every generated file, relative to the repository root, and its content."""
    observability_files = observability_generate.outputs()
    dashboard_files = dashboards_generate.outputs()
    rules = {path: text for path, text in observability_files.items() if path.parent == RULES_DIR}
    k8s_files = k8s_generate.outputs(rules, dashboard_files)
    files: dict[Path, str] = {}
    for part in (observability_files, dashboard_files, k8s_files):
        for path, text in part.items():
            relative = _relative(path)
            if relative in files:
                raise ValueError(f"{relative}: generated twice")
            if not any(location.holds(relative, text) for location in LOCATIONS):
                raise ValueError(f"{relative}: generated outside every location of observability/generated.py")
            files[relative] = text
    return files


Kind = Literal["stale", "missing", "orphaned"]

_MEANING: dict[Kind, str] = {
    "stale": "differs from what its sources give",
    "missing": "its sources give it, the tree lacks it",
    "orphaned": "no source produces it any more",
}


@dataclass(frozen=True)
class Difference:
    """One file where the tree and the sources disagree."""

    path: Path  # relative to the root
    kind: Kind

    def __str__(self) -> str:
        return f"{self.kind}: {self.path.as_posix()} ({_MEANING[self.kind]})"


def differences(expected: Mapping[Path, str], root: Path) -> list[Difference]:
    """Where the tree at ``root`` differs from ``expected`` (paths relative to the root), by path."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    found = []
    for path, text in expected.items():
        target = root / path
        if not target.is_file():
            found.append(Difference(path, "missing"))
        elif target.read_text(encoding="utf-8") != text:
            found.append(Difference(path, "stale"))
    for location in LOCATIONS:
        found += [Difference(path, "orphaned") for path in location.files(root) if path not in expected]
    return sorted(found, key=lambda difference: difference.path)


def write(expected: Mapping[Path, str], root: Path) -> list[Difference]:
    """Make the tree at ``root`` what ``expected`` says: write stale and missing files, delete orphans."""
    found = differences(expected, root)
    for difference in found:
        target = root / difference.path
        if difference.kind == "orphaned":
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(expected[difference.path], encoding="utf-8")
    return found


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m observability.generated", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale, missing or orphaned"
    )
    args = parser.parse_args(argv)
    try:
        expected = outputs()
        found = differences(expected, root) if args.check else write(expected, root)
    except (OSError, LookupError, ValueError, yaml.YAMLError) as exc:
        # A source that does not load (an SLO file, infra/cluster.yaml, a rule file) or a tree that cannot
        # be read: nothing can be said about drift.
        print(f"generate: could not {'check' if args.check else 'generate'}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        for difference in found:
            print(f"generate: {difference}", file=sys.stderr)
        if found:
            print(
                f"generate: {len(found)} of the generated files differ from their sources: "
                "run `make generate` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"generate: {len(expected)} generated files match their sources")
        return 0
    for difference in found:
        verb = "removed" if difference.kind == "orphaned" else "wrote"
        print(f"generate: {verb} {difference.path.as_posix()} (was {difference.kind})")
    print(f"generate: {len(expected)} generated files, {len(found)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
