#!/usr/bin/env python3
"""Read and change the release values of one Kustomize overlay (k8s/overlays/<env>/).

    overlay.py tag ENV             print the overlay's image tag
    overlay.py set-tag ENV TAG     change that tag: one line of kustomization.yaml, nothing else
    overlay.py value ENV KEY       print KEY of infra-outputs.env; refuses the committed placeholders
    overlay.py next ENV            print the environment a release of ENV is promoted to

The workflows run it on a bare runner, so it uses the standard library only. It edits the text rather
than re-serialising YAML: `kustomize edit set image` rewrites the whole file and moves its comments and
keys (kubernetes-sigs/kustomize#4481), so its pull requests would change more than the tag.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Release order: a tag reaches dev first (image.yml), then moves one stage at a time (promote.yml).
STAGES = ("dev", "uat", "prod")
# Docker's tag grammar (distribution/reference): what ECR accepts as an image tag.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# What the committed infra-outputs.env files hold until `infra/run.sh -e <env> outputs` runs
# (k8s/README.md, "Values from infra/").
PLACEHOLDERS = ("000000000000", "example.com")
_TOP_LEVEL_KEY = re.compile(r"^[A-Za-z_][\w.-]*:")
_NEW_TAG = re.compile(r"^(?P<lead>\s*(?:-\s+)?newTag:\s*)(?P<value>\S.*?)\s*$")


class OverlayError(RuntimeError):
    """The overlay is missing or not in the shape this script edits; the message says what to fix."""


@dataclass(frozen=True)
class Overlay:
    root: Path
    environment: str

    @property
    def folder(self) -> Path:
        return self.root / "k8s" / "overlays" / self.environment

    @property
    def kustomization(self) -> Path:
        return self.folder / "kustomization.yaml"

    @property
    def infra_outputs(self) -> Path:
        return self.folder / "infra-outputs.env"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))


def overlay(root: Path, environment: str) -> Overlay:
    if environment not in STAGES:
        raise OverlayError(f"unknown environment {environment!r}: use one of {', '.join(STAGES)}")
    found = Overlay(root, environment)
    if not found.kustomization.is_file():
        raise OverlayError(f"{found.relative(found.kustomization)} does not exist")
    return found


def _tag_line(lines: list[str], where: str) -> int:
    """Index of the one ``newTag:`` line of the top-level ``images:`` list."""
    inside = False
    found: list[int] = []
    for index, line in enumerate(lines):
        if _TOP_LEVEL_KEY.match(line):
            inside = line.startswith("images:")
            continue
        if inside and _NEW_TAG.match(line):
            found.append(index)
    if len(found) != 1:
        raise OverlayError(f"{where}: expected exactly one newTag under images:, found {len(found)}")
    return found[0]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def current_tag(target: Overlay) -> str:
    lines = target.kustomization.read_text().splitlines()
    match = _NEW_TAG.match(lines[_tag_line(lines, target.relative(target.kustomization))])
    assert match is not None
    return _unquote(match["value"])


def set_tag(target: Overlay, tag: str) -> bool:
    """Write ``tag`` into the overlay; return whether the file changed."""
    if not TAG.fullmatch(tag):
        raise OverlayError(f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128)")
    text = target.kustomization.read_text()
    lines = text.splitlines(keepends=True)
    index = _tag_line([line.rstrip("\r\n") for line in lines], target.relative(target.kustomization))
    match = _NEW_TAG.match(lines[index].rstrip("\r\n"))
    assert match is not None
    if _unquote(match["value"]) == tag:
        return False
    ending = lines[index][len(lines[index].rstrip("\r\n")) :]
    # Always quoted: a commit SHA made only of digits, or of digits and one "e", is a number in YAML.
    lines[index] = f'{match["lead"]}"{tag}"{ending}'
    target.kustomization.write_text("".join(lines))
    return True


def infra_value(target: Overlay, key: str) -> str:
    where = target.relative(target.infra_outputs)
    if not target.infra_outputs.is_file():
        raise OverlayError(f"{where} does not exist: run `infra/run.sh -e {target.environment} outputs`")
    values: dict[str, str] = {}
    for line in target.infra_outputs.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    if key not in values:
        raise OverlayError(f"{where} has no {key}")
    value = values[key]
    if any(placeholder in value for placeholder in PLACEHOLDERS):
        raise OverlayError(
            f"{where} still holds the placeholder {key}={value}: after the environment's first apply run "
            f"`infra/run.sh -e {target.environment} outputs` and commit the file (infra/README.md, step 6)"
        )
    return value


def next_stage(environment: str) -> str:
    if environment not in STAGES[:-1]:
        raise OverlayError(f"{environment!r} is not promoted anywhere: promote one of {', '.join(STAGES[:-1])}")
    return STAGES[STAGES.index(environment) + 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="overlay.py", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tag").add_argument("environment")
    set_parser = commands.add_parser("set-tag")
    set_parser.add_argument("environment")
    set_parser.add_argument("tag")
    value_parser = commands.add_parser("value")
    value_parser.add_argument("environment")
    value_parser.add_argument("key")
    commands.add_parser("next").add_argument("environment")
    args = parser.parse_args(argv)
    try:
        if args.command == "next":
            print(next_stage(args.environment))
            return 0
        target = overlay(args.root, args.environment)
        if args.command == "tag":
            print(current_tag(target))
        elif args.command == "set-tag":
            changed = set_tag(target, args.tag)
            state = "set to" if changed else "already"
            print(f"{target.relative(target.kustomization)}: image tag {state} {args.tag}", file=sys.stderr)
        else:
            print(infra_value(target, args.key))
    except OverlayError as exc:
        print(f"overlay.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
