"""The Python API in a few lines: load a model, run a turn, get the reply and the new history.

Example::

    from workbench import load_model
    bot = load_model()                      # embedded SmolLM2; or load_model("/path/to/model")
    reply, history = bot.chat("What is the capital of France?")
"""

from __future__ import annotations

from typing import Any

from workbench.chat_model import ChatModel
from workbench.models.loading import ProgressCallback
from workbench.models.spec import ModelSpec


def load_model(
    source: str | None = None, *, progress: ProgressCallback | None = None, **options: Any
) -> ChatModel:
    """Load a model: ``None`` means ``WORKBENCH_MODEL``, ``MODEL_PATH`` or the embedded default.

    Args:
        source: ``"embedded"``, a Hugging Face model folder, or a ``.gguf`` file.
        progress: Called with a sentence for each loading step.
        **options: Any other :class:`~workbench.models.spec.ModelSpec` field by name, e.g.
            ``backend="transformers"``, ``device="cuda"``, ``dtype="bfloat16"``,
            ``trust_remote_code=True`` (needed by ChatGLM3). Unset ones come from the environment.

    Raises:
        ModelError: If the model cannot be found or loaded; the message says what to do.
        TypeError: If an option names no field of ModelSpec.
    """
    return ChatModel.load(ModelSpec.from_env(source, **options), progress)
