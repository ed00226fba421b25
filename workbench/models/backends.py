"""One way to load any engine: :func:`load_backend`.

Engines are listed by name with the module that implements them, imported only when chosen, so the
path through one engine never imports another's dependencies (torch, transformers, llama_cpp).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from workbench.errors import ModelLoadError
from workbench.models.backend import Backend
from workbench.models.loading import ProgressCallback
from workbench.models.spec import BACKENDS, ModelSpec, is_remote_source


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


ENGINES: dict[str, EngineEntry] = {
    "transformers": EngineEntry("workbench.models.transformers_backend", "TransformersBackend"),
    "remote": EngineEntry("workbench.models.remote_backend", "RemoteBackend", lambda: _installed("openai")),
}


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def choose_backend(spec: ModelSpec) -> str:
    """The engine ``auto`` stands for: remote for a server URL, else transformers (it runs every model).

    Raises:
        ModelLoadError: If the spec names an unknown engine.
    """
    if spec.backend not in BACKENDS:
        raise ModelLoadError(f"Unknown backend {spec.backend!r}; choose one of {', '.join(BACKENDS)}.")
    if spec.backend != "auto":
        return spec.backend
    return "remote" if is_remote_source(spec.source) else "transformers"


def load_backend(spec: ModelSpec, progress: ProgressCallback | None = None) -> Backend:
    """Load the model a spec names with the engine it names (or the best one for it).

    Raises:
        ModelError: If the model cannot be found or loaded; the message says what to do.
    """
    name = choose_backend(spec)
    entry = ENGINES[name]
    if entry.available is not None and not entry.available():
        raise ModelLoadError(
            f"The {name} backend is not installed here; install its package (see requirements.txt) or use "
            "--backend auto."
        )
    engine = getattr(importlib.import_module(entry.module), entry.factory)
    backend: Backend = engine.load(spec, progress)
    return backend
