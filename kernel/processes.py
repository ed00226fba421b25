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


#: ``/proc/PID/limits`` rows by ``resource`` name.
_LIMIT_ROWS = {
    "RLIMIT_AS": "Max address space",
    "RLIMIT_CPU": "Max cpu time",
    "RLIMIT_FSIZE": "Max file size",
    "RLIMIT_NOFILE": "Max open files",
    "RLIMIT_CORE": "Max core file size",
    "RLIMIT_NPROC": "Max processes",
}


def read_limits(pid: int) -> dict[str, tuple[float, float]]:
    """The soft and hard limits of ``pid`` from ``/proc/PID/limits`` ("unlimited" is infinity)."""
    with open(f"/proc/{pid}/limits", encoding="ascii", errors="replace") as table:
        lines = table.read().splitlines()
    found: dict[str, tuple[float, float]] = {}
    for name, row in _LIMIT_ROWS.items():
        for line in lines:
            if line.startswith(row + " "):
                soft, hard = line[len(row) :].split()[:2]
                found[name] = (
                    float("inf") if soft == "unlimited" else int(soft),
                    float("inf") if hard == "unlimited" else int(hard),
                )
    return found


def limits_problem(pid: int, expected: list[tuple[str, int]]) -> str:
    """What is wrong with the limits of ``pid`` seen from outside, or "" when each is in place.

    Args:
        pid: The kernel's pid on the host.
        expected: ``(RLIMIT_NAME, value)`` pairs; soft and hard limits must be at most ``value``.
    """
    try:
        found = read_limits(pid)
    except OSError as error:
        return f"its limits could not be read ({error.strerror})"
    wrong = [
        f"{name} is {found.get(name, ('missing',))[-1]} instead of {value}"
        for name, value in expected
        if name not in found or max(found[name]) > value
    ]
    return "; ".join(wrong)


def kernel_pid(bwrap_pid: int) -> int | None:
    """The host pid of the kernel in the sandbox launched as ``bwrap_pid`` (its pid 2), or None."""
    for process in sandbox_processes(bwrap_pid):
        if process.ns_pid == 2:
            return process.pid
    return None
