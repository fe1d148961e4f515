"""Write dashboards/generated/<uid>.json from dashboards/src/; ``--check`` fails instead when one is stale.

``python -m dashboards.generate`` (``make dashboards``). The output depends only on the sources, so a
second run changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.builder import Dashboard, render
from dashboards.src import database, kubernetes, loadtest, service_overview, slo

OUT_DIR = Path(__file__).resolve().parent / "generated"


def dashboards() -> list[Dashboard]:
    return [
        service_overview.dashboard(),
        slo.dashboard(),
        database.dashboard(),
        kubernetes.dashboard(),
        loadtest.dashboard(),
    ]


def render_all() -> dict[Path, str]:
    return {OUT_DIR / f"{d.uid}.json": render(d) for d in dashboards()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated dashboard is out of date")
    args = parser.parse_args(argv)
    files = render_all()
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    unknown = sorted(set(OUT_DIR.glob("*.json")) - set(files))
    if args.check:
        for path in [*stale, *unknown]:
            print(f"out of date: {path.name} (run `make dashboards`)", file=sys.stderr)
        return 1 if stale or unknown else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(files[path])
        print(f"wrote {path.relative_to(OUT_DIR.parent.parent)}")
    for path in unknown:
        path.unlink()
        print(f"removed {path.relative_to(OUT_DIR.parent.parent)} (no source)")
    print(f"{len(files)} dashboards, {len(stale)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
