"""Running ``python -m workbench``: as a user does (a subprocess) and in process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from workbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, stdin: str = "", timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess from the repository root, with no model settings from this shell.

    ``env`` adds variables after those are dropped.
    """
    environment = dict(os.environ)
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        environment.pop(name, None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=timeout,
    )


def run_main(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the CLI in this process; return its exit status, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdin=io.StringIO(stdin), out=out, err=err)
    return status, out.getvalue(), err.getvalue()
