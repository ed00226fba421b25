"""The kernel process's main program, run *inside* the sandbox as ``python -c SOURCE``.

The sandbox cannot import the ``kernel`` package (the app's folder is not bound in), so
:func:`kernel.sandbox.launch_code` sends this file's source followed by a call to :func:`main`.
It must only import the standard library and ipykernel.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def cut_note(count: int) -> str:
    """The marker written where ``count`` characters were dropped (``kernel.outputs.cut_marker``)."""
    return f"\n[... {count} more characters cut ...]\n"


def cap_stream(stream: Any, limit: int, window: float = 0.2) -> Callable[[], None] | None:
    """Let ``stream`` take at most ``limit`` characters per ``window`` seconds; count the rest.

    ipykernel buffers output until its IO thread flushes it, without bound, and a tight print
    loop can starve that thread: code printing forever would fill the kernel's memory and send
    huge messages. Here each window's share is flushed as soon as it is full (a blocking flush,
    which also lets the IO thread run), further writes in the window are dropped, and a marker
    says how much was cut: at once for a single write over the cap (a 40 MB print would be one
    message over the app's size limit), at the next window, or at the end of the run.

    Returns:
        A function writing the marker for what is still uncounted, to call after each run, or
        None when ``stream`` is not ipykernel's.
    """
    if not hasattr(stream, "register_hook"):
        return None
    state: dict[str, int] = {"taken": 0, "dropped": 0}
    started = [0.0]  # when the current window began
    write = stream.write

    def report_dropped() -> None:
        if state["dropped"]:
            dropped, state["dropped"] = state["dropped"], 0
            write(cut_note(dropped))

    def capped_write(text: str) -> int:
        now, total = time.monotonic(), len(text)
        if now - started[0] >= window:
            started[0], state["taken"] = now, 0
            report_dropped()
        room = limit - state["taken"]
        if room <= 0:
            state["dropped"] += total
            return total
        if total > room:
            text = text[:room] + cut_note(total - room)
        state["taken"] += min(total, room)
        write(text)
        if state["taken"] >= limit:
            stream.flush()
        return total

    def end_run() -> None:
        report_dropped()
        started[0], state["taken"] = 0.0, 0  # each run starts with a full window

    stream.write = capped_write
    return end_run


def main(limits: list[tuple[str, int]], stream_chars: int) -> None:
    """Set the resource limits, then run ipykernel with capped output streams."""
    for name, value in limits:
        resource.setrlimit(getattr(resource, name), (value, value))
    if sys.path and sys.path[0] == "":
        del sys.path[0]  # the work folder must not shadow installed modules
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize()
    reporters = [cap_stream(stream, stream_chars) for stream in (sys.stdout, sys.stderr)]
    shell = getattr(app, "shell", None)
    for report in reporters:
        if shell is not None and report is not None:
            shell.events.register("post_execute", report)
    if shell is not None and hasattr(shell, "_tee"):
        # IPython 9 tees every write into history_manager.outputs, kept for the kernel's whole
        # life and ahead of the cap above: code printing forever would fill the memory.
        shell._tee = lambda channel: contextlib.nullcontext()
    app.start()
