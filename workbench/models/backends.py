"""One way to load any engine: :func:`load_backend`.

Engines are listed by name with the module that implements them, imported only when chosen, so the
path through one engine never imports another's dependencies (torch, transformers, llama_cpp).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

from workbench.errors import ModelLoadError
from workbench.models.backend import Backend
from workbench.models.hub_names import parse_hub_name
from workbench.models.loading import ProgressCallback
from workbench.models.spec import BACKENDS, EMBEDDED, ModelSpec, is_remote_source


@dataclass(frozen=True)
class EngineEntry:
    """Where an engine lives.

    Attributes:
        module: The module that implements it.
        factory: The name of the class (with a ``load(spec, progress)`` classmethod) in that module.
        available: Says whether it can run here (its package is installed); None means always.
    """

    module: str
    factory: str
    available: Callable[[], bool] | None = None


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python can be imported here (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def llama_cpp_gpu_offload() -> bool:
    """Whether the installed llama.cpp was built with a GPU backend (CUDA, Metal, ...)."""
    import llama_cpp

    from workbench.models.llamacpp_cpu import load_cpu_backend

    load_cpu_backend()  # a portable build registers its backends (a GPU one too, when built) when asked
    return bool(llama_cpp.llama_supports_gpu_offload())


ENGINES: dict[str, EngineEntry] = {
    "transformers": EngineEntry("workbench.models.transformers_backend", "TransformersBackend"),
    # Loads the batched engine, or the serial one for --parallel 1.
    "llama.cpp": EngineEntry(
        "workbench.models.llamacpp_batched", "BatchedLlamaCppBackend", llama_cpp_installed
    ),
    "remote": EngineEntry("workbench.models.remote_backend", "RemoteBackend", lambda: _installed("openai")),
}


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def is_gguf_source(spec: ModelSpec) -> bool:
    """Whether the spec names a GGUF file (the embedded model is one; so is a Hub name ``ORG/REPO-GGUF:QUANT``)."""
    if spec.source == EMBEDDED or spec.source.lower().endswith(".gguf"):
        return True
    name = parse_hub_name(spec.source)
    return name is not None and name.gguf


def _cuda_gpu_present() -> bool:
    # The NVIDIA driver's device node: a GPU is there, without importing torch to ask.
    return os.path.exists("/dev/nvidiactl")


def choose_backend(spec: ModelSpec) -> str:
    """The engine ``auto`` stands for.

    remote for an ``openai:`` server source.
    llama.cpp for GGUF files (and the embedded model) when it is installed: it runs their quantized
    weights as they are, loads in a fraction of a second and decodes several times faster on a CPU.
    transformers for Hugging Face folders, for ``--quantize``, for a GPU that the installed llama.cpp
    cannot use, and whenever llama.cpp is not installed.

    Raises:
        ModelLoadError: If the spec names an unknown engine.
    """
    if spec.backend not in BACKENDS:
        raise ModelLoadError(f"Unknown backend {spec.backend!r}; choose one of {', '.join(BACKENDS)}.")
    if spec.backend != "auto":
        return spec.backend
    if is_remote_source(spec.source):
        return "remote"
    if spec.quantize != "none" or not is_gguf_source(spec) or not llama_cpp_installed():
        return "transformers"
    wants_gpu = spec.device in ("cuda", "mps") or (spec.device == "auto" and _cuda_gpu_present())
    if wants_gpu and not llama_cpp_gpu_offload():
        return "transformers"
    return "llama.cpp"


def load_backend(spec: ModelSpec, progress: ProgressCallback | None = None) -> Backend:
    """Load the model a spec names with the engine it names (or the best one for it).

    Raises:
        ModelError: If the model cannot be found or loaded; the message says what to do.
    """
    name = choose_backend(spec)
    entry = ENGINES[name]
    if entry.available is not None and not entry.available():
        raise ModelLoadError(
            f"The {name} backend is not installed here: run scripts/setup.sh (it installs every engine it can), "
            "or use --backend auto or transformers."
        )
    engine = getattr(importlib.import_module(entry.module), entry.factory)
    backend: Backend = engine.load(spec, progress)
    return backend
