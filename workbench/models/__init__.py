"""Loading models and generating text: the local transformers backend and the shared types."""

from workbench.models.generation import (
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
    TextBackend,
)
from workbench.models.local import LocalModel, ModelInfo
from workbench.models.spec import EMBEDDED, ModelSpec

__all__ = [
    "EMBEDDED",
    "GenerationRequest",
    "GenerationStats",
    "GenerationStream",
    "LocalModel",
    "ModelInfo",
    "ModelSpec",
    "SamplingSettings",
    "TextBackend",
]
