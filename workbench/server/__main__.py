"""``python -m workbench.server``: the same as ``python -m workbench serve``."""

from __future__ import annotations

import sys

from workbench.server.command import build_parser, run_serve

if __name__ == "__main__":
    sys.exit(run_serve(build_parser().parse_args()))
