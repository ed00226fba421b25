"""The engines the real-model tests run on, for fixtures and parametrized tests."""

from __future__ import annotations

import os

from workbench.models.backends import llama_cpp_installed
from workbench.models.spec import ModelSpec

#: llama.cpp (the default for GGUF files and the embedded model) when it is installed, and transformers
#: (Hugging Face folders, GPUs, the fallback) always.
ENGINES = ["llama.cpp", "transformers"] if llama_cpp_installed() else ["transformers"]


def embedded_spec(backend: str = "auto") -> ModelSpec:
    """The embedded model on the CPU, on ``backend``, with llama.cpp's threads and slots from the shell.

    The suite must pass with 1 and with 2 threads (``WORKBENCH_THREADS=1`` / ``2``): an answer that
    changes with the thread count is a knife's edge no test may rest on. It must pass with the serial
    engine too (``WORKBENCH_PARALLEL=1``; the default batches 4 generations). Other model settings of the
    shell (``WORKBENCH_MODEL``, ...) are not read.
    """
    names = ("WORKBENCH_THREADS", "WORKBENCH_PARALLEL")
    threads = {name: value for name, value in os.environ.items() if name in names}
    return ModelSpec.from_env("embedded", env=threads, device="cpu", backend=backend)
