"""One long-lived thread per engine in which every decode runs.

A new thread per generation costs nothing on a CPU, but on CUDA some state is per thread: torch.compile's
CUDA graphs (``torch._inductor.cudagraph_trees`` keeps its graph trees in thread-local storage, so a
compiled static-cache decode in a fresh thread records its graphs again), and cuBLAS handles and
workspaces. Running every decode of a backend in the same thread keeps that state warm across calls.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class DecodeThread:
    """Runs jobs one after another in one daemon thread, started on first use (and again if it died).

    Args:
        name: The thread's name.
    """

    def __init__(self, name: str = "workbench-decode") -> None:
        self.name = name
        self._jobs: queue.Queue[tuple[Callable[[], None], threading.Event, list[BaseException]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    @property
    def ident(self) -> int | None:
        """The thread's identifier, or None before the first job."""
        return self._thread.ident if self._thread else None

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the decode thread and wait for it; its exception is raised here."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        done = threading.Event()
        raised: list[BaseException] = []
        self._jobs.put((job, done, raised))
        done.wait()
        if raised:
            raise raised[0]

    def _loop(self) -> None:
        while True:
            job, done, raised = self._jobs.get()
            try:
                job()
            except BaseException as exc:  # handed to the caller, which raises it in its own thread
                raised.append(exc)
            finally:
                done.set()
