"""Console scripts from PyPI in virtual environments of their own, cached across test runs.

A tool the tests run as a separate process (an MCP server, a Jupyter Kernel Gateway) may pin other
versions than ours, so each gets its own venv under ``~/.cache/workbench/<cache>/<hash of the
requirement>`` (or ``$WORKBENCH_CACHE_DIR``): the first run installs it, later runs reuse it. Only when
the package index cannot be reached is the test skipped, and it says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

_NETWORK_HINTS = ("Could not find a version", "No matching distribution", "Failed to establish", "Network is unreachable",
                  "Temporary failure in name resolution", "ConnectionError", "Max retries exceeded")  # fmt: skip


def _cache_root(cache: str) -> Path:
    base = os.environ.get("WORKBENCH_CACHE_DIR") or str(Path.home() / ".cache" / "workbench")
    return Path(base) / cache


def server_venv(requirement: str, script: str, cache: str = "test-venvs") -> Path:
    """The console script ``script`` of ``requirement`` (one or more, space-separated), in its own cached venv.

    ``cache`` names the cache's folder under ``~/.cache/workbench``.

    Skips the test (saying why) only when pip cannot reach the package index.
    """
    folder = _cache_root(cache) / hashlib.sha256(requirement.encode()).hexdigest()[:16]
    executable = folder / "bin" / script
    if executable.exists():
        return executable
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    venv.create(building, with_pip=True)
    done = subprocess.run(
        [
            str(building / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirement.split(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        output = done.stdout + done.stderr
        if any(hint in output for hint in _NETWORK_HINTS):
            pytest.skip(
                f"{requirement} could not be installed: the package index is unreachable ({output[-300:]})"
            )
        raise AssertionError(f"pip install {requirement} failed:\n{output[-2000:]}")
    (building / "requirement.txt").write_text(requirement + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    # The venv's scripts name the building folder in their shebang: rewrite it.
    for path in (folder / "bin").iterdir():
        if path.is_file() and not path.is_symlink():
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if str(building) in text:
                path.write_text(text.replace(str(building), str(folder)))
    return executable
