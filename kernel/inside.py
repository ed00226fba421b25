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
from typing import Any


def cap_stream(stream: Any, limit: int, window: float = 0.2) -> None:
    """Let ``stream`` take at most ``limit`` characters per ``window`` seconds; count the rest.

    ipykernel buffers output until its IO thread flushes it, without bound, and a tight print
    loop can starve that thread: code printing forever would fill the kernel's memory and send
    huge messages. Here each window's share is flushed as soon as it is full (a blocking flush,
    which also lets the IO thread run), further writes in the window are dropped, and the next
    message says how much was cut.
    """
    if not hasattr(stream, "register_hook"):
        return
    state = {"start": 0.0, "taken": 0, "dropped": 0}
    write = stream.write

    def capped_write(text: str) -> int:
        now, total = time.monotonic(), len(text)
        if now - state["start"] >= window:
            state["start"], state["taken"] = now, 0
        room = limit - state["taken"]
        if room <= 0:
            state["dropped"] += len(text)
            return len(text)
        if len(text) > room:  # one huge write (print of 40 MB) is cut too, not sent whole
            state["dropped"] += len(text) - room
            text = text[:room]
        state["taken"] += len(text)
        write(text)
        if state["taken"] >= limit:
            stream.flush()
        return total

    def mark_cut(msg: dict[str, Any]) -> dict[str, Any]:
        text = msg["content"].get("text", "")
        dropped, state["dropped"] = state["dropped"] + max(len(text) - limit, 0), 0
        if dropped:
            msg["content"]["text"] = text[:limit] + f"\n[... {dropped} more characters cut ...]\n"
        return msg

    stream.write = capped_write
    stream.register_hook(mark_cut)


def main(limits: list[tuple[str, int]], stream_chars: int) -> None:
    """Set the resource limits, then run ipykernel with capped output streams."""
    for name, value in limits:
        resource.setrlimit(getattr(resource, name), (value, value))
    if sys.path and sys.path[0] == "":
        del sys.path[0]  # the work folder must not shadow installed modules
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize()
    for stream in (sys.stdout, sys.stderr):
        cap_stream(stream, stream_chars)
    shell = getattr(app, "shell", None)
    if shell is not None and hasattr(shell, "_tee"):
        # IPython 9 tees every write into history_manager.outputs, kept for the kernel's whole
        # life and ahead of the cap above: code printing forever would fill the memory.
        shell._tee = lambda channel: contextlib.nullcontext()
    app.start()
