"""The thread that forks one session's kernel processes: :class:`Launcher`.

bwrap's ``--die-with-parent`` is PR_SET_PDEATHSIG, which fires when the *thread* that forked it
ends, not the process. Streamlit runs each script run in a short-lived thread, and the pool starts
spares in one, so a kernel must be forked from a thread that lives as long as its session. Each
session has its own such thread: a start that hangs holds up only that session, never the kernels
of others (issue 24, a FIFO planted as the connection file blocked the single shared launcher).
The thread is a daemon, so it never keeps the app from exiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

_T = TypeVar("_T")


class Launcher:
    """A long-lived daemon thread that runs the functions given to :meth:`run`, one at a time.

    Args:
        name: The thread's name, for debugging.
    """

    def __init__(self, name: str = "kernel-launcher") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, function: Callable[[], _T], timeout: float) -> _T:
        """Run ``function`` in the thread and return its result.

        Raises:
            TimeoutError: If it has not returned after ``timeout`` seconds; it is abandoned (the
                caller kills what it started and uses a new launcher).
            Exception: Whatever ``function`` raised.
        """
        future: Future[object] = Future()
        self._jobs.put((function, future))
        return future.result(timeout=timeout)  # type: ignore[return-value]

    def close(self) -> None:
        """Let the thread end once its current job is done (a kernel still running gets SIGKILL)."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as error:  # handed to the caller, who re-raises it
                future.set_exception(error)
