"""``python -m workbench.server``: the same as ``python -m workbench serve``."""

from __future__ import annotations

import sys

from workbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
