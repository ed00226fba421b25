"""One long-lived thread per engine in which every decode runs.

A new thread per generation costs nothing on a CPU, but on CUDA some state is per thread: torch.compile's
CUDA graphs (``torch._inductor.cudagraph_trees`` keeps its graph trees in thread-local storage, so a
compiled static-cache decode in a fresh thread records its graphs again), and cuBLAS handles and
workspaces. Running every decode of a backend in the same thread keeps that state warm across calls.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
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
        # The thread holds the queue, never this object: dropping the engine ends it.
        # Not at exit: a thread woken while the interpreter shuts down dies taking the GIL, and llama.cpp's
        # terminate handler turns that into an abort.
        weakref.finalize(self, self._jobs.put, None).atexit = False

    @property
    def ident(self) -> int | None:
        """The thread's identifier, or None before the first job."""
        return self._thread.ident if self._thread else None

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the decode thread and wait for it; its exception is raised here."""
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=_serve, args=(self._jobs,), name=self.name, daemon=True
                )
                self._thread.start()
        done = threading.Event()
        raised: list[BaseException] = []
        self._jobs.put((job, done, raised))
        done.wait()
        if raised:
            raise raised[0]


#: The name of SerialBackend's per-request threads (they wait for the lock, then hand the decode over).
GENERATE_THREAD = "workbench-generate"
#: How long exit waits for generations still tidying up.
EXIT_WAIT_S = 5.0


@atexit.register
def _let_generations_end() -> None:
    # A daemon thread that frees a tensor after the interpreter has started to finalize dies taking the
    # GIL inside torch's C++, and the process aborts ("terminate called without an active exception";
    # 4 runs in 5 of bench/device_check.py --cpu-smoke). A consumer has its answer before the worker has
    # tidied up (after_decode, its frames' tensors), so exit waits, a little, for those threads to end.
    deadline = time.monotonic() + EXIT_WAIT_S
    for thread in threading.enumerate():
        if thread.name == GENERATE_THREAD and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _serve(jobs: queue.Queue[_Job | None]) -> None:
    """Run jobs until the ``None`` that :class:`DecodeThread`'s finalizer sends."""
    while (item := jobs.get()) is not None:
        job, done, raised = item
        del item
        try:
            job()
        except BaseException as exc:  # handed to the caller, which raises it in its own thread
            raised.append(exc)
        finally:
            # Drop the job (its tensors) before the caller goes on: the idle thread keeps nothing alive,
            # and frees nothing later, when the process may be exiting.
            del job
            done.set()
        del done, raised
