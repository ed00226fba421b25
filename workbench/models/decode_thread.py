"""One long-lived thread per engine in which every decode runs.

A new thread per generation costs nothing on a CPU, but on CUDA some state is per thread: torch.compile's
CUDA graphs (``torch._inductor.cudagraph_trees`` keeps its graph trees in thread-local storage, so a
compiled static-cache decode in a fresh thread records its graphs again), and cuBLAS handles and
workspaces. Running every decode of a backend in the same thread keeps that state warm across calls.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable

_Job = tuple[Callable[[], None], threading.Event, list[BaseException]]


class DecodeThread:
    """Runs jobs one after another in one daemon thread, started on first use (and again if it died).

    The thread ends when this object is garbage collected (the engine it served was dropped).

    Args:
        name: The thread's name.
    """

    def __init__(self, name: str = "workbench-decode") -> None:
        self.name = name
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        weakref.finalize(self, self._jobs.put, None)  # the thread holds the queue, never this object

    @property
    def ident(self) -> int | None:
        """The thread's identifier, or None before the first job."""
        return self._thread.ident if self._thread else None

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the decode thread and wait for it; its exception is raised here."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=_serve, args=(self._jobs,), name=self.name, daemon=True)
                self._thread.start()
        done = threading.Event()
        raised: list[BaseException] = []
        self._jobs.put((job, done, raised))
        done.wait()
        if raised:
            raise raised[0]



def _serve(jobs: queue.Queue[_Job | None]) -> None:
    """Run jobs until the ``None`` that :class:`DecodeThread`'s finalizer sends."""
    while (item := jobs.get()) is not None:
        job, done, raised = item
        try:
            job()
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            raised.append(exc)
        finally:
            done.set()
        del item, job, done, raised  # an idle thread must not keep the engine of its last job alive
