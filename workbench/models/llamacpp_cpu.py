"""Which CPU kernels llama.cpp runs: the portable build's variants, chosen when the engine loads.

``scripts/setup.sh`` builds llama-cpp-python as llama.cpp's own releases are built: without
``-march=native``, with the CPU backend compiled once per x86-64 level (``GGML_CPU_ALL_VARIANTS``: x64,
sse42, sandybridge, haswell (AVX2), skylakex (AVX-512), icelake, ...) as modules loaded at run time
(``GGML_BACKEND_DL``). Nothing is registered until a module is loaded, so :func:`load_cpu_backend` runs
before the first model: it loads the best variant this CPU runs, as llama.cpp's ``ggml_backend_load_best``
scores them, or the one ``WORKBENCH_GGML_CPU`` names (``haswell`` runs the AVX2 kernels on an AVX-512
machine: how the tests are run under each variant). A build without variants (a plain ``pip install
llama-cpp-python``) has its CPU backend built in; then there is nothing to choose and the variant is
reported as ``built-in``.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import ModelLoadError

#: Names the CPU variant to load (e.g. ``haswell`` or ``icelake``) instead of the best one.
VARIANT_ENV = "WORKBENCH_GGML_CPU"
#: Reported when the build has its CPU backend built in (no variants to choose from).
BUILT_IN = "built-in"
#: GPU and other backend modules a build may carry next to the CPU variants.
_OTHER_BACKENDS = ("blas", "cuda", "hip", "metal", "vulkan", "sycl", "musa", "opencl", "rpc")

_lock = threading.Lock()
_loaded: str | None = None


def library_dir() -> Path:
    """The folder of llama-cpp-python's shared libraries (``llama_cpp/lib``, or ``LLAMA_CPP_LIB_PATH``)."""
    import llama_cpp

    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    return Path(override) if override else Path(llama_cpp.__file__).parent / "lib"


def cpu_variants(lib_dir: Path | None = None) -> dict[str, Path]:
    """The CPU variants the build carries, by name (``haswell`` -> ``libggml-cpu-haswell.so``)."""
    folder = lib_dir or library_dir()
    prefix = "libggml-cpu-"
    return {
        path.name[len(prefix) :].split(".so")[0]: path
        for path in sorted(folder.glob(f"{prefix}*.so*"))
        if path.is_file()
    }


def variant_score(path: Path) -> int:
    """llama.cpp's score for a CPU variant on this CPU: 0 when the CPU lacks its instructions."""
    module = ctypes.CDLL(str(path))
    try:
        score = module.ggml_backend_score
        score.restype = ctypes.c_int
        score.argtypes = []
        return int(score())
    finally:
        _ctypes.dlclose(module._handle)  # as llama.cpp does after scoring: only the chosen one stays


def loaded_ggml(lib_dir: Path) -> ctypes.CDLL:
    """The ``libggml`` that llama-cpp-python's ``libllama`` uses (by its soname, ``libggml.so.0``).

    A wheel holds ``libggml.so``, ``libggml.so.0`` and ``libggml.so.0.x.y`` as three copies, not links:
    opening another of them would load a second ggml with a backend registry of its own.
    """
    import llama_cpp  # noqa: F401  (loads libllama, and with it its libggml)

    for path in sorted(lib_dir.glob("libggml.so*"), key=lambda p: (len(p.name) != len("libggml.so.0"), p.name)):
        try:
            return ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD)
        except OSError:
            continue
    raise ModelLoadError(f"llama-cpp-python's libggml was not found loaded from {lib_dir}; reinstall it.")


def best_variant(variants: dict[str, Path]) -> str:
    """The variant ``ggml_backend_load_best`` picks: the highest score, the first of equals."""
    scores = {name: variant_score(path) for name, path in variants.items()}
    name = max(scores, key=lambda n: scores[n])
    if scores[name] <= 0:
        raise ModelLoadError(
            "None of llama.cpp's CPU variants runs on this CPU; rebuild llama-cpp-python on this machine "
            "(scripts/setup.sh) or use --backend transformers."
        )
    return name


def load_cpu_backend() -> str:
    """Load llama.cpp's CPU backend (and any GPU backend built) once per process; return the variant's name.

    Returns:
        The CPU variant in use (``icelake``, ``haswell``, ...), or ``built-in`` for a build without variants.

    Raises:
        ModelLoadError: If ``WORKBENCH_GGML_CPU`` names a variant the build lacks or this CPU cannot run.
    """
    global _loaded
    with _lock:
        wanted = os.environ.get(VARIANT_ENV, "").strip()
        if _loaded is not None:
            if wanted and wanted != _loaded:
                raise ModelLoadError(
                    f"llama.cpp's {_loaded} CPU kernels are loaded in this process already; "
                    f"{VARIANT_ENV}={wanted} takes effect in a new process."
                )
            return _loaded
        lib_dir = library_dir()
        variants = cpu_variants(lib_dir)
        if not variants:
            if wanted:
                raise ModelLoadError(
                    f"{VARIANT_ENV}={wanted} asks for a CPU variant, but this llama-cpp-python has its CPU "
                    "backend built in; unset it, or rebuild with scripts/setup.sh (a portable build)."
                )
            _loaded = BUILT_IN
            return _loaded
        name = wanted or best_variant(variants)
        if name not in variants:
            raise ModelLoadError(
                f"{VARIANT_ENV}={name} is not one of this build's CPU variants: {', '.join(variants)}."
            )
        if wanted and variant_score(variants[name]) <= 0:
            raise ModelLoadError(
                f"This CPU lacks the instructions of llama.cpp's {name} variant ({VARIANT_ENV}); choose "
                f"another of: {', '.join(n for n, p in variants.items() if variant_score(p) > 0)}."
            )
        ggml = loaded_ggml(lib_dir)
        load = ggml.ggml_backend_load
        load.restype = ctypes.c_void_p
        load.argtypes = [ctypes.c_char_p]
        with llama_errors_to([]):  # llama.cpp logs each load on stderr; a failure is raised below
            handle = load(str(variants[name]).encode())
        if not handle:
            raise ModelLoadError(
                f"llama.cpp could not load its {name} CPU kernels ({variants[name]}); rebuild "
                "llama-cpp-python with scripts/setup.sh."
            )
        for backend in _OTHER_BACKENDS:  # a GPU build's modules: the best of each kind, as llama.cpp does
            for path in sorted(lib_dir.glob(f"libggml-{backend}*.so*"))[:1]:
                with llama_errors_to([]):
                    load(str(path).encode())
        _loaded = name
        return _loaded


@contextmanager
def llama_errors_to(errors: list[str]) -> Iterator[None]:
    """Collect llama.cpp's error log lines while loading (its exceptions carry no reason)."""
    import llama_cpp
    from llama_cpp import _logger

    error_level, continued = 4, 5  # ggml_log_level: GGML_LOG_LEVEL_ERROR, GGML_LOG_LEVEL_CONT
    last = [0]

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level == error_level or (level == continued and last[0] == error_level):
            errors.append(text.decode("utf-8", errors="replace"))
        if level != continued:
            last[0] = level

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
