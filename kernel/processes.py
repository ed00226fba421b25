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


def _status(pid: str) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
        return dict(line.split(":\t", 1) for line in status.read().splitlines() if ":\t" in line)


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def sandbox_processes(bwrap_pid: int) -> list[SandboxProcess]:
    """The processes in the PID namespace of the sandbox launched as ``bwrap_pid``."""
    nested: list[tuple[dict[str, str], int]] = []
    init_pid = None
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _status(name)
        except OSError:
            continue
        ns_pids = fields.get("NSpid", "").split()
        if len(ns_pids) < 2:
            continue  # not in a child PID namespace
        nested.append((fields, int(ns_pids[-1])))
        if fields.get("PPid", "").strip() == str(bwrap_pid) and ns_pids[-1] == "1":
            init_pid = int(name)
    if init_pid is None:
        return []
    namespace = _pid_namespace(init_pid)
    found = []
    for fields, ns_pid in nested:
        pid = int(fields["Pid"])
        if namespace is not None and _pid_namespace(pid) == namespace:
            found.append(
                SandboxProcess(pid, ns_pid, int(fields.get("Threads", "1")), fields.get("Name", "").strip())
            )
    return found
