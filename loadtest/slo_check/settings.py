"""What the gate runs: its flags and the variables it reads, through app.config's one settings reader."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from app.config import ConfigError, env_float, env_int, env_text
from loadtest.slo_check import NotMeasured
from loadtest.slo_check.spec import DRILLS_FILE
from local.stack import DEFAULT_STATE_DIR
from observability.paths import ROOT

REPORTS = ROOT / "reports" / "slo"
OWN_STATE = DEFAULT_STATE_DIR / "slo-check"  # inside make run's state folder, ignored by git like it
USERS = 10
SPAWN_RATE = 10.0


@dataclass(frozen=True)
class Settings:
    """One run of the gate."""

    users: int
    spawn_rate: float
    steady: float | None  # seconds of the gate phase, instead of the drills file's
    no_drills: bool
    drills_file: Path
    faults: dict[str, Any] | None  # what the service starts with, as a build with faults left on would
    out: Path
    state_dir: Path  # where a stack of the gate's own lives
    run_state_dir: Path  # where `make run` keeps the state of the stack it serves
    step_summary: Path | None  # GitHub Actions' job summary, appended to


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line and exit 2, like every other reason the gate cannot run."""

    def error(self, message: str) -> NoReturn:
        raise NotMeasured(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m loadtest.slo_check", description="The SLO gate (make slo-check).")
    parser.add_argument("--users", help=f"Locust users (default: SLO_CHECK_USERS or {USERS})")
    parser.add_argument(
        "--spawn-rate", help=f"users started per second (default: SLO_CHECK_SPAWN_RATE or {SPAWN_RATE:g})"
    )
    parser.add_argument("--steady", help="seconds of the gate phase (default: drills file)")
    parser.add_argument("--no-drills", action="store_true", help="run only the gate phase")
    parser.add_argument("--drills", type=Path, default=DRILLS_FILE)
    parser.add_argument(
        "--faults",
        help="JSON faults the service starts with, as a build with fault injection left on would "
        '(e.g. \'{"*": {"error_ratio": 0.05}}\'); proves the gate fails',
    )
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--state-dir", type=Path, default=OWN_STATE, help="where a stack of the check's own lives")
    return parser


def parse(argv: Sequence[str] | None, env: Mapping[str, str]) -> Settings:
    """The settings from ``argv`` and ``env``; a flag wins over its variable. Raise NotMeasured naming the bad one."""
    args = _parser().parse_args(argv)
    try:
        users = env_int(*_source(args.users, "--users", env, "SLO_CHECK_USERS"), USERS, 1, 1000)
        spawn_rate = env_float(
            *_source(args.spawn_rate, "--spawn-rate", env, "SLO_CHECK_SPAWN_RATE"), SPAWN_RATE, 0.1, 1000
        )
        steady = None if args.steady is None else env_float({"--steady": args.steady}, "--steady", 0, 1, 86_400)
        step_summary = env_text(env, "GITHUB_STEP_SUMMARY", "")
        # make run's state folder, so that a stack it serves from elsewhere is found and reused.
        run_state_dir = Path(env_text(env, "STACK_STATE_DIR", str(DEFAULT_STATE_DIR))).resolve()
    except ConfigError as exc:
        raise NotMeasured(str(exc)) from None
    return Settings(
        users=users,
        spawn_rate=spawn_rate,
        steady=steady,
        no_drills=args.no_drills,
        drills_file=args.drills,
        faults=_faults(args.faults),
        out=args.out,
        state_dir=args.state_dir,
        run_state_dir=run_state_dir,
        step_summary=Path(step_summary) if step_summary else None,
    )


def _source(flag_value: str | None, flag: str, env: Mapping[str, str], variable: str) -> tuple[Mapping[str, str], str]:
    """Where a setting is read: its flag when given, else its variable; the reader's message names the one used."""
    if flag_value is not None:
        return {flag: flag_value}, flag
    return env, variable


def _faults(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        faults = json.loads(text)
    except ValueError as exc:
        raise NotMeasured(f"--faults: not JSON ({exc})") from None
    if not isinstance(faults, dict):
        raise NotMeasured("--faults: must be a JSON object of route template to faults")
    return faults
