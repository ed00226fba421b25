"""llama.cpp's thread settings on this machine: decode / batch threads, a persistent threadpool's polling.

Without a threadpool of its own, ggml makes one for every ``llama_decode`` and ends it after (its threads
poll for work at level 50 first). llama-cpp-python has no binding for ``llama_attach_threadpool``, so
:class:`Threadpools` reaches it, and the CPU backend's ``ggml_threadpool_new`` / ``ggml_threadpool_free``,
with ctypes through ggml's backend registry. ``poll`` is how long idle threads spin before they sleep (0:
not at all); it does not change the barriers inside one step, where ggml's threads always spin.

For each setting, the embedded model on the batched engine (4 slots) writes one stream alone, then four
at once, on a quiet machine and beside ``--load`` busy processes (``yes > /dev/null``, one per core by
default). Prints tokens/s with the load average of the moment.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_threads.py [--load 2] [--tokens 96] [--settings 1,1,ggml 2,2,0]

Where 2 threads collapse (a busy machine), their rows take minutes: pick settings with ``--settings``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workbench.chat_model import ChatModel
from workbench.errors import ModelLoadError
from workbench.messages import Message, Role
from workbench.models.generation import SamplingSettings
from workbench.models.llamacpp_cpu import library_dir, loaded_ggml
from workbench.models.spec import ModelSpec

#: (decode threads, batch threads, threadpool poll level or None for ggml's own per-decode pool).
SETTINGS: list[tuple[int, int, int | None]] = [
    (1, 1, None),
    (2, 2, None),
    (1, 2, None),
    (1, 1, 0),
    (2, 2, 0),
    (1, 2, 0),
]
PROMPTS = [
    "Write a long story about a dragon who bakes bread.",
    "Explain how a steam engine works, step by step, in detail.",
    "List many fruits and describe each of them.",
    "Describe a walk through an old city, street by street.",
]


#: ggml's ``GGML_MAX_N_THREADS``: the size of a threadpool's CPU mask.
_MAX_THREADS = 512


class ThreadpoolParams(ctypes.Structure):
    """ggml's ``struct ggml_threadpool_params``."""

    _fields_ = [
        ("cpumask", ctypes.c_bool * _MAX_THREADS),  # all false: the default affinity
        ("n_threads", ctypes.c_int),
        ("prio", ctypes.c_int),  # enum ggml_sched_priority; 0 is normal
        ("poll", ctypes.c_uint32),
        ("strict_cpu", ctypes.c_bool),
        ("paused", ctypes.c_bool),
    ]


def _cpu_proc(name: str) -> Any:
    """A function the CPU backend exports through ggml's registry (``ggml_backend_reg_get_proc_address``)."""
    ggml = loaded_ggml(library_dir())
    by_name = ggml.ggml_backend_reg_by_name
    by_name.restype, by_name.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    reg = by_name(b"CPU")
    get = ggml.ggml_backend_reg_get_proc_address
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
    address = get(reg, name.encode()) if reg else None
    if not address:
        raise ModelLoadError(f"llama.cpp's CPU backend has no {name}; rebuild llama-cpp-python.")
    return address


class Threadpools:
    """The decode and batch threadpools of one llama.cpp context; :meth:`close` before the model is freed.

    Args:
        ctx: The ``llama_context`` pointer (``Llama.ctx``).
        threads: Threads for one-token steps (``n_threads``).
        threads_batch: Threads for steps of several tokens (``n_threads_batch``).
        poll: The polling level of idle threads, 0 to 100.
    """

    def __init__(self, ctx: Any, threads: int, threads_batch: int, poll: int) -> None:
        import llama_cpp.llama_cpp as lib

        self._ctx = ctx
        self._llama = lib._lib
        new = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(ThreadpoolParams))(
            _cpu_proc("ggml_threadpool_new")
        )
        self._free = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_cpu_proc("ggml_threadpool_free"))
        self.pools: list[int] = []
        for n in dict.fromkeys((threads, threads_batch)):
            params = ThreadpoolParams(n_threads=n, prio=0, poll=poll, strict_cpu=False, paused=False)
            pool = new(ctypes.byref(params))
            if not pool:
                self.close()
                raise ModelLoadError(f"llama.cpp could not start a pool of {n} CPU threads.")
            self.pools.append(pool)
        attach = self._llama.llama_attach_threadpool
        attach.restype, attach.argtypes = None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        attach(ctx, self.pools[0], self.pools[-1])

    def close(self) -> None:
        """Detach the pools from the context and end their threads."""
        if not self.pools:
            return
        detach = self._llama.llama_detach_threadpool
        detach.restype, detach.argtypes = None, [ctypes.c_void_p]
        detach(self._ctx)
        for pool in self.pools:
            self._free(pool)
        self.pools = []


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """Run ``processes`` CPU-bound processes (``yes``) meanwhile."""
    procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(processes)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def streams(model: ChatModel, prompts: list[str], tokens: int) -> float:
    """Aggregate decode tokens/s of ``prompts`` written at once."""
    settings = SamplingSettings(temperature=0.0, max_new_tokens=tokens)
    started = time.perf_counter()
    runs = [model.stream([Message(Role.USER, p)], settings) for p in prompts]
    for run in runs:
        run.result(timeout=600)
    wall = time.perf_counter() - started
    return sum(run.stats.new_tokens for run in runs) / wall


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def measure(threads: int, threads_batch: int, poll: int | None, tokens: int) -> tuple[float, float]:
    import llama_cpp

    spec = ModelSpec.from_env("embedded", env={}, device="cpu", backend="llama.cpp").replace(
        threads=threads, parallel=4
    )
    model = ChatModel.load(spec)
    llm = model.backend.llm  # type: ignore[attr-defined]
    llama_cpp.llama_set_n_threads(llm.ctx, threads, threads_batch)
    pools = Threadpools(llm.ctx, threads, threads_batch, poll) if poll is not None else None
    try:
        streams(model, PROMPTS[:1], 16)  # warm up
        one = streams(model, PROMPTS[:1], tokens)
        four = streams(model, PROMPTS, tokens)
    finally:
        if pools is not None:
            with model.backend.scheduler.step_lock:  # type: ignore[attr-defined]
                pools.close()
        del model, llm
        gc.collect()
    return one, four


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy processes beside")
    parser.add_argument("--tokens", type=int, default=96, help="tokens per stream")
    parser.add_argument(
        "--settings",
        nargs="*",
        default=[],
        help="only these settings, as THREADS,BATCH,POLL (POLL a number, or ggml for ggml's own pool)",
    )
    args = parser.parse_args()
    settings = SETTINGS
    if args.settings:
        settings = []
        for text in args.settings:
            threads, batch, poll = text.split(",")
            settings.append((int(threads), int(batch), None if poll == "ggml" else int(poll)))
    print(
        f"{'threads':>8} {'batch':>5} {'poll':>5} | {'quiet 1':>8} {'quiet 4':>8} {'load':>4} | "
        f"{'busy 1':>8} {'busy 4':>8} {'load':>4}"
    )
    for threads, threads_batch, poll in settings:
        quiet_load = load_average()
        one, four = measure(threads, threads_batch, poll, args.tokens)
        with busy(args.load):
            busy_one, busy_four = measure(threads, threads_batch, poll, args.tokens)
            loaded = load_average()
        pool = "ggml" if poll is None else str(poll)
        print(
            f"{threads:>8} {threads_batch:>5} {pool:>5} | {one:8.1f} {four:8.1f} {quiet_load:>4} | "
            f"{busy_one:8.1f} {busy_four:8.1f} {loaded:>4}",
            flush=True,
        )


if __name__ == "__main__":
    main()
