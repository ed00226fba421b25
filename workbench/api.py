"""The Python API in a few lines: load a model, run a turn, get the reply and the new history.

Example::

    from workbench import load_model
    bot = load_model()                      # embedded SmolLM2; or load_model("/path/to/model")
    reply, history = bot.chat("What is the capital of France?")
"""

from __future__ import annotations

from workbench.chat_model import ChatModel
from workbench.models.loading import ProgressCallback
from workbench.models.spec import ModelSpec

Workbench = ChatModel


def load_model(
    source: str | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool | None = None,
    progress: ProgressCallback | None = None,
) -> ChatModel:
    """Load a model: ``None`` means ``WORKBENCH_MODEL``, ``MODEL_PATH`` or the embedded default.

    Args:
        source: ``"embedded"``, a Hugging Face model folder, or a ``.gguf`` file.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        trust_remote_code: Let the model folder's own code run (needed by ChatGLM3).
        progress: Called with a sentence for each loading step.

    Raises:
        ModelError: If the model cannot be found or loaded; the message says what to do.
    """
    spec = ModelSpec.from_env(source, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    return ChatModel.load(spec, progress)
