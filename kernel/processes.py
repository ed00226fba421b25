"""The processes inside one sandbox, seen from the host, and stopping the strays among them.

Inside the sandbox's PID namespace, pid 1 is bubblewrap's init and pid 2 the kernel; anything
else was started by the code (and orphans are re-parented to pid 1). Restarting the kernel kills
them all with the namespace; between runs they may live on, unless they use up the process
budget (a fork bomb), in which case the session stops them with :func:`stop_strays`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from dataclasses import dataclass

#: The PIDs (inside the namespace) of bubblewrap's init and of the kernel.
_KEPT = (1, 2)


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


#: Run silently in the kernel after strays were killed: their zombies count against
#: RLIMIT_NPROC until the kernel, their parent, reaps them. ``exec`` with its own namespace
#: leaves no names behind in the user's.
REAP_CHILDREN = """exec('''
import os, time
end = time.monotonic() + 1.0
while time.monotonic() < end:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.02)
''', {})"""


def stop_strays(bwrap_pid: int, wait: float = 2.0) -> int:
    """Kill every process of the sandbox but its init and the kernel; return how many.

    Each process is pinned with a pidfd and its namespace checked again before the signal, so
    a pid reused meanwhile by a host process is never hit. Processes may fork while being
    killed, so this repeats until none is left or ``wait`` seconds have passed.
    """
    end = time.monotonic() + wait
    stopped = 0
    while time.monotonic() < end:
        strays = [p for p in sandbox_processes(bwrap_pid) if p.ns_pid not in _KEPT and p.state != "Z"]
        kernel = [p for p in sandbox_processes(bwrap_pid) if p.ns_pid == 2]
        if not strays or not kernel:
            break
        stopped += _kill_and_wait(strays, _pid_namespace(kernel[0].pid), end)
    return stopped


def _kill_and_wait(processes: list[SandboxProcess], namespace: str | None, end: float) -> int:
    """SIGKILL ``processes`` if still in ``namespace``; wait until they end or ``end``."""
    pidfds: list[int] = []
    for process in processes:
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            continue  # already gone
        pidfds.append(pidfd)
        if namespace is not None and _pid_namespace(process.pid) == namespace:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    try:
        poller = select.poll()
        for pidfd in pidfds:
            poller.register(pidfd, select.POLLIN)  # readable once the process has ended
        waiting = set(pidfds)
        while waiting and time.monotonic() < end:
            for pidfd, _ in poller.poll(50):
                waiting.discard(pidfd)
                poller.unregister(pidfd)
    finally:
        for pidfd in pidfds:
            os.close(pidfd)
    return len(pidfds)
