"""Checks the kernel tests share: a session still answers, processes on the host."""

from __future__ import annotations

import os
from pathlib import Path

from kernel.pool import AnyKernel


def assert_usable(session: AnyKernel) -> None:
    """The session still runs code and answers correctly."""
    execution = session.execute("6 * 7", timeout=10)
    assert execution.result == "42", execution.for_model()
    assert session.alive


def host_processes_with(marker: str) -> list[int]:
    """Running host pids whose command line starts with ``marker`` (this process excluded)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if cmdline.startswith(marker.encode()) and is_running(int(name)):
            found.append(int(name))
    return found


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (this VM's PID 1 reaps orphans lazily)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
