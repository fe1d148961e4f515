"""`python -m loadtest.slo_check`: run the gate and turn its outcome into the exit code CI acts on."""

from __future__ import annotations

import os
import sys
import traceback

from loadtest.slo_check import NotMeasured, gate, settings

PROG = "make slo-check"


def main(argv: list[str] | None = None) -> int:
    """0 every SLO and drill passed, 1 one failed, 2 the gate could not measure (one line says why)."""
    try:
        return gate.run(settings.parse(argv, os.environ))
    except NotMeasured as exc:
        # Collapsed to one line: some causes (a YAML error, a server's error page) span several.
        print(f"{PROG}: could not measure: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A bug in the gate is no verdict on the change: exit 2 as well, with the traceback that
        # whoever fixes the gate needs, and the same last line as every other exit 2.
        traceback.print_exc()
        print(f"{PROG}: could not measure: the gate itself failed ({type(exc).__name__}, above)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
