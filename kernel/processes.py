"""The processes inside one sandbox, seen from the host.

Inside the sandbox's PID namespace, pid 1 is bubblewrap's init and pid 2 the kernel; anything
else was started by the code (orphans are re-parented to pid 1). Restarting the kernel kills them
all with the namespace; between runs they may live on, unless they use up the process budget (a
fork bomb), in which case the session restarts the kernel. Killing them one by one is no cure:
they fork while being killed, and forked copies of the kernel share its ZeroMQ state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxProcess:
    """A process of the sandbox.

    Attributes:
        pid: Its pid on the host.
        ns_pid: Its pid inside the sandbox.
        threads: Its number of threads (each counts against RLIMIT_NPROC).
        name: Its command name.
        state: Its state letter (``R`` running, ``S`` sleeping, ``Z`` zombie, ...).
    """

    pid: int
    ns_pid: int
    threads: int
    name: str
    state: str = "?"


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
        return dict(line.split(":\t", 1) for line in status.read().splitlines() if ":\t" in line)


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (orphans in the sandbox go to its init)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as children:
                found += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return found


def sandbox_processes(bwrap_pid: int) -> list[SandboxProcess]:
    """The processes in the sandbox launched as ``bwrap_pid``: its init and all descendants."""
    found: list[SandboxProcess] = []
    pending = _children(bwrap_pid)  # bubblewrap's init, the namespace's pid 1
    while pending:
        pid = pending.pop()
        try:
            fields = _status(pid)
        except OSError:
            continue  # ended meanwhile
        ns_pids = fields.get("NSpid", "").split()
        if len(ns_pids) < 2:
            continue  # not inside the sandbox's PID namespace
        threads = int(fields.get("Threads", "1"))
        state = fields.get("State", "?").strip()[:1]
        found.append(SandboxProcess(pid, int(ns_pids[-1]), threads, fields.get("Name", "").strip(), state))
        pending += _children(pid)
    return sorted(found, key=lambda process: process.ns_pid)
